"""Layout ``voc``: Pascal VOC's ``JPEGImages/``, ``SegmentationClass/`` palette PNGs and
``ImageSets/Segmentation/<split>.txt``; 255 (the border colour) is ignored.

Pillow reads palette indices of the PNGs when installed; OpenCV's colours go back to indices
through the VOC palette otherwise. Both must agree; tests check that.
"""
import logging
import os

import cv2
import numpy as np

from nanoseg.contract import IGNORE_ID
from nanoseg.datasets.classes import class_list, select_classes
from nanoseg.datasets.dataset import Sample, SegmentationDataset
from nanoseg.datasets.masks import IdMaskDecoder, present_ids, read_mask_raw
from nanoseg.datasets.pairing import subfolders, wrong_layout
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOC_BORDER_COLOR = (224, 224, 192)
VOC_ALIASES = {"human": "person", "people": "person", "airplane": "aeroplane",
               "plane": "aeroplane", "motorcycle": "motorbike", "tv": "tvmonitor",
               "monitor": "tvmonitor", "table": "diningtable", "plant": "pottedplant",
               "couch": "sofa"}
VOC_DECODERS = ("auto", "pil", "cv2")


def looks_like(root):
    """JPEGImages/ and SegmentationClass/ (any case)."""
    if not os.path.isdir(root):
        return False
    return {"jpegimages", "segmentationclass"} <= {d.lower() for d in subfolders(root)}


def voc_palette(count=256):
    """The Pascal VOC colour map (RGB per index), built the way the devkit's bitget does."""
    palette = np.zeros((count, 3), dtype=np.uint8)
    for index in range(count):
        value, red, green, blue = index, 0, 0, 0
        for bit in range(8):
            red |= ((value >> 0) & 1) << (7 - bit)
            green |= ((value >> 1) & 1) << (7 - bit)
            blue |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        palette[index] = (red, green, blue)
    return palette


class VocMaskDecoder(object):
    """VOC palette PNGs -> labels, whether the decoder hands out indices or colours.

    Pillow opens a palette PNG as mode "P" and gives indices; OpenCV expands the palette to
    BGR colours, which go back to indices through the VOC palette (224,224,192 -> 255).
    """

    def __init__(self, id_decoder, decoder="auto"):
        if decoder not in VOC_DECODERS:
            raise NanosegError("VOC mask decoder must be one of {}, got {!r}".format(
                VOC_DECODERS, decoder))
        self.id_decoder = id_decoder
        self.decoder = decoder

    def __call__(self, path):
        return self.id_decoder.labels_from_ids(read_voc_indices(path, self.decoder), path)


def read_voc_indices(path, decoder="auto"):
    """VOC class indices (uint8 HxW, 255 = border) of a SegmentationClass PNG.

    ``decoder``: ``pil`` (palette indices when the PNG is mode P/L, colours otherwise),
    ``cv2`` (always colours, mapped back through the palette) or ``auto`` (Pillow if
    installed).
    """
    if decoder not in VOC_DECODERS:
        raise NanosegError("VOC mask decoder must be one of {}, got {!r}".format(
            VOC_DECODERS, decoder))
    if decoder in ("auto", "pil"):
        try:
            from PIL import Image
        except ImportError:
            if decoder == "pil":
                raise NanosegError("decoder 'pil' needs Pillow (pip install pillow), or use "
                                   "decoder 'cv2'")
            Image = None
        if Image is not None:
            return _voc_indices_pil(path, Image)
    mask = read_mask_raw(path)
    if mask.ndim == 2:
        return mask
    return _voc_colors_to_indices(cv2.cvtColor(mask[:, :, :3], cv2.COLOR_BGR2RGB), path)


def _voc_indices_pil(path, image_module):
    """Indices through Pillow: mode P/L are indices already, RGB goes through the palette."""
    if not os.path.isfile(path):
        raise NanosegError("mask not found: {}".format(path))
    try:
        with image_module.open(path) as handle:
            mode = handle.mode
            if mode in ("P", "L"):
                return np.array(handle, dtype=np.uint8)
            rgb = np.array(handle.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise NanosegError("cannot read mask {}: {} (replace or remove it)".format(path, exc))
    return _voc_colors_to_indices(rgb, path)


def _voc_colors_to_indices(rgb, path):
    """RGB colours -> VOC indices; a colour outside the palette names the file."""
    palette = voc_palette()
    known = {}
    for index in list(range(len(VOC_CLASSES))) + [IGNORE_ID]:
        red, green, blue = (int(v) for v in palette[index])
        known[(red << 16) | (green << 8) | blue] = index
    codes = (rgb[:, :, 0].astype(np.int32) << 16) | (rgb[:, :, 1].astype(np.int32) << 8) \
        | rgb[:, :, 2].astype(np.int32)
    uniques, inverse = np.unique(codes, return_inverse=True)
    lookup = np.zeros(len(uniques), dtype=np.uint8)
    for position, code in enumerate(uniques):
        if int(code) not in known:
            raise NanosegError(
                "mask {} has colour {} which is not in the VOC palette (classes 0..20 and the "
                "border 224,224,192): save it as a VOC palette PNG".format(
                    path, ((int(code) >> 16) & 255, (int(code) >> 8) & 255, int(code) & 255)))
        lookup[position] = known[int(code)]
    return lookup[inverse].reshape(codes.shape)


def open_voc(root, split, classes, voc_decoder="auto"):
    """Pascal VOC: chosen classes -> 1..N, 255 borders kept; a subset skips empty images."""
    expected = "JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/{train,val}.txt"
    images_dir, masks_dir = os.path.join(root, "JPEGImages"), os.path.join(root,
                                                                            "SegmentationClass")
    if not (os.path.isdir(images_dir) and os.path.isdir(masks_dir)):
        raise wrong_layout(root, "voc", expected)
    names = _voc_split_names(root, split)
    samples = []
    for name in names:
        image, mask = os.path.join(images_dir, name + ".jpg"), os.path.join(masks_dir,
                                                                          name + ".png")
        for path in (image, mask):
            if not os.path.isfile(path):
                raise NanosegError("{} is listed in ImageSets/Segmentation/{}.txt but missing: "
                                   "add it or remove the name from the list".format(path, split))
        samples.append(Sample(image, mask, name))
    real = list(VOC_CLASSES[1:])
    chosen = [i + 1 for i in select_classes(class_list(classes) or real, real, "voc",
                                            VOC_ALIASES)]
    mapping = {i: 0 for i in range(len(VOC_CLASSES))}
    mapping.update((source_id, label + 1) for label, source_id in enumerate(chosen))
    mapping[IGNORE_ID] = IGNORE_ID
    ids = IdMaskDecoder(mapping, "VOC", "VOC masks hold indices 0..20 and 255")
    decoder = VocMaskDecoder(ids, voc_decoder)
    if len(chosen) < len(real):
        samples = _keep_with_classes(samples, decoder, len(chosen), root)
    class_names = [VOC_CLASSES[i] for i in chosen]
    if not samples:
        raise NanosegError("split {!r} of {} has no samples containing {}".format(
            split, root, ", ".join(class_names)))
    palette = voc_palette()
    return SegmentationDataset(samples, class_names, chosen,
                               [palette[i].tolist() for i in chosen],
                               decoder, root, "voc", split)


def _voc_split_names(root, split):
    """Image ids of a VOC split from ImageSets/Segmentation/<split>.txt."""
    folder = os.path.join(root, "ImageSets", "Segmentation")
    lists = ["trainval"] if split == "all" and os.path.isfile(
        os.path.join(folder, "trainval.txt")) else (["train", "val"] if split == "all"
                                                    else [split])
    names = []
    for which in lists:
        path = os.path.join(folder, which + ".txt")
        if not os.path.isfile(path):
            raise NanosegError("VOC split list {} not found: VOC lists each split's image ids "
                               "in ImageSets/Segmentation/<split>.txt".format(path))
        with open(path, "r") as handle:
            names.extend(line.split()[0] for line in handle if line.strip())
    if not names:
        raise NanosegError("VOC split list for {!r} in {} is empty".format(split, folder))
    return names


def _keep_with_classes(samples, decoder, count, root):
    """Only the samples whose mask contains at least one chosen class (labels 1..count)."""
    kept = []
    for sample in samples:
        present = present_ids(decoder(sample.mask_path))
        if any(1 <= int(i) <= count for i in present):
            kept.append(sample)
    LOG.info("VOC %s: kept %d of %d images that contain the chosen classes", root, len(kept),
             len(samples))
    return kept
