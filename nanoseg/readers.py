"""Dataset readers: the folders users really have -> (RGB uint8 image, uint8 label mask) pairs.

Every reader yields masks already in nanoseg's label space (``0`` background, ``1..N`` the
chosen classes in order, ``255`` ignored), so training, evaluation and the edge never see a
dataset's own ids or colours. Layouts:

``flat``   ``images/`` + ``masks/`` (or ``labels/``, or any two folders), paired by path
           without extension, nested subfolders included (``Images/1..4`` + ``Masks/1..4``);
           a dataset that comes split (``train/ valid/`` or ``val/``, ``test/``, each with
           images + masks) keeps that split, others get a seeded one; binary masks (0/255,
           0/1, noisy JPEG; ``mask_invert`` when the dark value is the class) or class ids
           given as ``name=id`` classes.
``csv``    a manifest of relative paths (image, optional mask, optional split column), or one
           CSV per split (``train.csv`` ``valid.csv`` ...), also in a ``csv_file/`` folder as
           the nail tutorial's ``make_csv_file`` writes them (bare image names under
           ``<split>/images``, masks of the same name under ``<split>/masks``).
``camvid`` ``train/ trainannot/ val/ valannot/ test/ testannot/``, pixel = class id 0..11.
``voc``    ``JPEGImages/``, ``SegmentationClass/`` palette PNGs, ``ImageSets/Segmentation``.

Decoding is OpenCV (Pillow only to read palette indices of VOC PNGs). No TensorFlow here:
this module must stay cheap to import (the benchmark and the CLIs list datasets with it).
Each problem a user can fix raises a one-line :class:`NanosegError` naming the file or class.
"""
import collections
import csv
import io
import logging
import os

import cv2
import numpy as np

from nanoseg.contract import IGNORE_ID
from nanoseg.files import sample_name, write_text_atomic
from nanoseg.preprocess import IMAGE_READ_FLAGS
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

LAYOUTS = ("flat", "csv", "camvid", "voc")
SPLITS = ("train", "val", "test", "all")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IMAGE_FOLDER_NAMES = ("images", "image", "imgs", "img")
MASK_FOLDER_NAMES = ("masks", "mask", "labels", "label", "annotations", "annotation")
DEFAULT_BINARY_CLASS = "object"
BINARY_THRESHOLD = 127

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol",
                  "Fence", "Car", "Pedestrian", "Bicyclist")
CAMVID_UNLABELLED = 11
# Unlabelled is ignored unless asked for by name (the CamVid tutorial lists it as a class).
CAMVID_SELECTABLE = CAMVID_CLASSES + ("Unlabelled",)
CAMVID_COLORS = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
                 (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
                 (0, 128, 192), (0, 0, 0))
# Other spellings the tutorials use, each naming exactly one class ('sign symbol' or
# 'sign_symbol' need no entry: names are compared without case, spaces, '_' and '-').
CAMVID_ALIASES = {"unlabeled": "Unlabelled", "void": "Unlabelled", "sign": "SignSymbol",
                  "sidewalk": "Pavement", "cyclist": "Bicyclist"}
CAMVID_SPLIT_FOLDERS = {"train": ("train", "trainannot"), "val": ("val", "valannot"),
                        "test": ("test", "testannot")}

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor")
VOC_BORDER_COLOR = (224, 224, 192)
VOC_ALIASES = {"human": "person", "people": "person", "airplane": "aeroplane",
               "plane": "aeroplane", "motorcycle": "motorbike", "tv": "tvmonitor",
               "monitor": "tvmonitor", "table": "diningtable", "plant": "pottedplant",
               "couch": "sofa"}
VOC_DECODERS = ("auto", "pil", "cv2")

SPLIT_NAMES = {"train": "train", "training": "train", "1": "train", "true": "train",
               "val": "val", "valid": "val", "validation": "val", "0": "val", "false": "val",
               "test": "test", "testing": "test"}
# Split folders of a dataset that comes split (ROOT/train/images, ROOT/valid/masks, ...).
SPLIT_FOLDER_NAMES = collections.OrderedDict([("train", ("train", "training")),
                                              ("val", ("valid", "val", "validation")),
                                              ("test", ("test", "testing"))])
# Where the nail tutorial's make_csv_file writes its per-split CSVs, under the dataset root.
CSV_FOLDER_NAMES = ("csv_file", "csv_files", "csv")
MASK_SHARE_SAMPLES = 16
CSV_IMAGE_COLUMNS = ("image", "images", "image_path", "img", "img_path", "imagepath", "x")
CSV_MASK_COLUMNS = ("mask", "masks", "mask_path", "label", "labels", "label_path",
                    "annotation", "maskpath", "y")
CSV_SPLIT_COLUMNS = ("split", "set", "subset", "phase", "fold", "train", "is_train")

Sample = collections.namedtuple("Sample", ["image_path", "mask_path", "name"])


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


# -- the dataset object ----------------------------------------------------------------------
class SegmentationDataset(object):
    """Paired files plus the decoder that turns a mask file into label space.

    ``class_names[i]`` is label ``i + 1``; ``source_ids[i]`` the id it had in the dataset
    (binary flat masks: 1, "any foreground"); ``colors`` RGB triples or None (palette).
    """

    ignore_id = IGNORE_ID

    def __init__(self, samples, class_names, source_ids, colors, mask_decoder, root=None,
                 layout=None, split=None):
        self.samples = list(samples)
        self.class_names = list(class_names)
        self.source_ids = [int(i) for i in source_ids]
        self.colors = None if colors is None else [list(c) for c in colors]
        self.mask_decoder = mask_decoder
        self.root = root
        self.layout = layout
        self.split = split

    def __len__(self):
        return len(self.samples)

    def load(self, index):
        """(RGB uint8 HxWx3, uint8 HxW labels) of sample ``index``, sizes checked."""
        sample = self.samples[index]
        image = read_image_rgb(sample.image_path)
        labels = self.mask_decoder(sample.mask_path)
        if labels.shape[:2] != image.shape[:2]:
            raise NanosegError(
                "mask {} is {}x{} but its image {} is {}x{}: image and mask must have the "
                "same size (re-export the mask at the image's size)".format(
                    sample.mask_path, labels.shape[1], labels.shape[0], sample.image_path,
                    image.shape[1], image.shape[0]))
        return image, labels

    def contract_classes(self):
        """Keyword arguments for ``nanoseg.contract.Contract.create``: names, ids, colours."""
        return {"class_names": list(self.class_names), "source_ids": list(self.source_ids),
                "colors": None if self.colors is None else [list(c) for c in self.colors]}

    def __repr__(self):
        return "SegmentationDataset({} {} {}: {} samples, classes {})".format(
            self.layout, self.split, self.root, len(self), self.class_names)


def read_image_rgb(path):
    """Decode an image file to RGB uint8 HxWx3, or say which file is broken."""
    if not os.path.isfile(path):
        raise NanosegError("image not found: {} (was it moved or deleted after the dataset "
                           "was listed?)".format(path))
    image = cv2.imread(path, IMAGE_READ_FLAGS)
    if image is None:
        raise NanosegError("cannot read image {}: it is not an image OpenCV can decode or it "
                           "is corrupt; replace or remove it".format(path))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask_raw(path):
    """The mask file's stored values (IMREAD_UNCHANGED: no colour conversion, no EXIF)."""
    if not os.path.isfile(path):
        raise NanosegError("mask not found: {} (was it moved or deleted after the dataset was "
                           "listed?)".format(path))
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise NanosegError("cannot read mask {}: it is not an image OpenCV can decode or it "
                           "is corrupt; replace or remove it".format(path))
    if mask.dtype != np.uint8:
        raise NanosegError("mask {} is {}, expected 8-bit: save masks as 8-bit PNG".format(
            path, mask.dtype))
    return mask


def _single_channel(mask, path, what):
    """A 2-D view of an id mask; a 3-channel copy of one grey plane is accepted."""
    if mask.ndim == 2:
        return mask
    planes = mask[:, :, :3]
    if np.array_equal(planes[:, :, 0], planes[:, :, 1]) and \
            np.array_equal(planes[:, :, 0], planes[:, :, 2]):
        return np.ascontiguousarray(planes[:, :, 0])
    raise NanosegError("mask {} has colours, but {} masks store one class id per pixel (grey "
                       "PNG): convert it to ids".format(path, what))


def _present_ids(mask):
    """Sorted ids that occur in a uint8 mask."""
    return np.flatnonzero(np.bincount(mask.ravel(), minlength=256))


# -- mask decoders (classes, not closures: Keras workers may pickle them) ----------------------
class BinaryMaskDecoder(object):
    """0/255, 0/1 or noisy-JPEG (also 3-channel) masks -> {0, 1}, thresholded at 127.

    ``invert``: the dark value is the class (membrane-style masks, 0 = foreground).
    """

    def __init__(self, invert=False):
        self.invert = bool(invert)

    def __call__(self, path):
        mask = read_mask_raw(path)
        if mask.ndim == 3:   # brightest channel: a pure red/green/blue stroke counts too
            mask = mask[:, :, :3].max(axis=2)
        top = int(mask.max())
        if 1 < top <= BINARY_THRESHOLD:
            raise NanosegError(
                "mask {} holds values 0..{}, which look like class ids, not a binary mask "
                "(0/255 or 0/1): give the classes as name=id pairs, e.g. "
                "classes=['nail=1']".format(path, top))
        bright = mask > (0 if top <= 1 else BINARY_THRESHOLD)
        return (~bright if self.invert else bright).astype(np.uint8)

    def describe(self):
        """Which stored values become the class, for the log."""
        if self.invert:
            return "mask values <= {} (the dark value, --mask-invert; 0 of 0/1 masks)".format(
                BINARY_THRESHOLD)
        return "mask values > {} (the bright value; 1 of 0/1 masks)".format(BINARY_THRESHOLD)


def binary_class_summary(dataset, limit=MASK_SHARE_SAMPLES):
    """'class nail = mask values > 127 ...: 5.1% of the pixels of 16 masks', or None.

    Binary masks say nothing about which value is the object: the share of pixels that
    became the class tells a user at once whether --mask-invert is needed. Only the first
    ``limit`` masks are decoded (cheap on any dataset size); None for id masks.
    """
    decoder = dataset.mask_decoder
    if not isinstance(decoder, BinaryMaskDecoder) or not len(dataset):
        return None, None
    counted = dataset.samples[:limit]
    hits = total = 0
    for sample in counted:
        labels = decoder(sample.mask_path)
        hits += int(np.count_nonzero(labels == 1))
        total += labels.size
    share = hits / float(max(1, total))
    text = "class {!r} = {}: {:.1%} of the pixels of {} masks".format(
        dataset.class_names[0], decoder.describe(), share, len(counted))
    return text, share


class IdMaskDecoder(object):
    """Masks of class ids -> labels through a lookup table; unknown ids are an error.

    ``mapping`` maps every allowed source id to its label (0, 1..N or 255).
    """

    def __init__(self, mapping, dataset_kind, fix):
        self.mapping = dict(mapping)
        self.dataset_kind = dataset_kind
        self.fix = fix
        self.table = np.zeros(256, dtype=np.uint8)
        for source_id, label in self.mapping.items():
            self.table[source_id] = label

    def __call__(self, path):
        mask = _single_channel(read_mask_raw(path), path, self.dataset_kind)
        return self.labels_from_ids(mask, path)

    def labels_from_ids(self, ids, path):
        """Map a 2-D id array to labels, naming the file if it holds an unexpected id."""
        unexpected = [int(i) for i in _present_ids(ids) if int(i) not in self.mapping]
        if unexpected:
            raise NanosegError("mask {} contains ids {} that are not {} ids {}: {}".format(
                path, unexpected[:10], self.dataset_kind, sorted(self.mapping), self.fix))
        return self.table[ids]


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
    installed). Both must agree; tests check that.
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


# -- class selection -------------------------------------------------------------------------
def _class_list(classes):
    """``classes`` as a list of strings: accepts None, a list, or 'a,b' / 'a b'."""
    if classes is None:
        return None
    if isinstance(classes, str):
        classes = classes.replace(",", " ").split()
    result = [str(c).strip() for c in classes if str(c).strip()]
    return result or None


def _class_key(name):
    """How class names compare: no case, spaces, '_' or '-' ('Sign Symbol' = 'signsymbol')."""
    return "".join(ch for ch in str(name).lower() if ch not in " _-")


def select_classes(requested, available, what, aliases=None):
    """Indices into ``available`` of the ``requested`` names, in order.

    Names match without case, spaces, '_' and '-'; ``aliases`` maps other spellings (keys
    compared the same way) to one available name each.
    """
    keys = [_class_key(name) for name in available]
    alias_keys = dict((_class_key(k), v) for k, v in (aliases or {}).items())
    chosen = []
    for name in requested:
        key = _class_key(name)
        if key not in keys and key in alias_keys:
            LOG.info("class %r is the %s class %r", name, what, alias_keys[key])
            key = _class_key(alias_keys[key])
        if key not in keys:
            raise NanosegError("class {!r} is not in the {} dataset; available classes: "
                               "{}".format(name, what, ", ".join(available)))
        index = keys.index(key)
        if index in chosen:
            raise NanosegError("class {!r} is selected twice (as {!r}); list each class "
                               "once".format(name, available[index]))
        chosen.append(index)
    return chosen


def parse_id_classes(classes):
    """['nail=1', 'skin=2'] -> (names, ids) for flat masks that store class ids."""
    names, ids = [], []
    for entry in classes:
        name, _, value = entry.partition("=")
        try:
            source_id = int(value)
        except ValueError:
            raise NanosegError("class {!r} must be name=id with an integer id 1..254, e.g. "
                               "nail=1".format(entry))
        if not name.strip() or not 1 <= source_id <= 254:
            raise NanosegError("class {!r} must be name=id with an id in 1..254 (0 is "
                               "background, 255 ignore)".format(entry))
        if source_id in ids:
            raise NanosegError("class id {} is given twice in {}".format(source_id, classes))
        names.append(name.strip())
        ids.append(source_id)
    return names, ids


def _flat_classes(classes, mask_invert=False):
    """Class names, source ids and the mask decoder for flat/csv masks."""
    classes = _class_list(classes)
    if classes and any("=" in c for c in classes):
        if mask_invert:
            raise NanosegError("mask_invert is for binary masks; masks of class ids (classes "
                               "{}) name their ids instead: drop --mask-invert".format(classes))
        if not all("=" in c for c in classes):
            raise NanosegError("classes {} mix plain names and name=id pairs: give every class "
                               "as name=id for masks of class ids".format(classes))
        names, ids = parse_id_classes(classes)
        mapping = {0: 0, IGNORE_ID: IGNORE_ID}
        mapping.update((source_id, i + 1) for i, source_id in enumerate(ids))
        fix = "add every id the masks use to classes as name=id (0 is background, 255 ignore)"
        return names, ids, IdMaskDecoder(mapping, "listed", fix)
    if classes and len(classes) > 1:
        raise NanosegError("classes {}: binary masks have one foreground class; for masks of "
                           "class ids give name=id pairs, e.g. nail=1 skin=2".format(classes))
    names = classes or [DEFAULT_BINARY_CLASS]
    return names, [1], BinaryMaskDecoder(mask_invert)


# -- listing files -----------------------------------------------------------------------------
def _is_image_file(name):
    """Image files by extension; hidden files (.DS_Store, ._x.jpg) are never samples."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _list_by_key(folder):
    """{relative path without extension: path} of the image files under ``folder``."""
    found = {}
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not _is_image_file(name):
                continue
            path = os.path.join(current, name)
            key = sample_name(path, folder)
            if key in found:
                raise NanosegError("{} and {} have the same name without extension, so masks "
                                   "cannot be paired: rename one".format(found[key], path))
            found[key] = path
    return found


def _subfolders(root):
    """Visible subfolder names of ``root``, sorted."""
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                  and not d.startswith("."))


def _found_text(root):
    """'a/, b/, c.csv' — what a folder holds, for wrong-layout messages."""
    entries = sorted(os.listdir(root))
    shown = [e + "/" if os.path.isdir(os.path.join(root, e)) else e for e in entries[:12]]
    if len(entries) > 12:
        shown.append("...")
    return ", ".join(shown) if shown else "nothing (the folder is empty)"


def detect_layout(root):
    """The layout ``root`` looks like ('flat', 'csv', 'camvid', 'voc') or None."""
    if os.path.isfile(root) and _is_csv(os.path.basename(root)):
        return "csv"
    if not os.path.isdir(root):
        return None
    lower = {d.lower() for d in _subfolders(root)}
    if {"jpegimages", "segmentationclass"} <= lower:
        return "voc"
    if any({a, b} <= lower for a, b in CAMVID_SPLIT_FOLDERS.values()):
        return "camvid"
    if lower & set(IMAGE_FOLDER_NAMES) and lower & set(MASK_FOLDER_NAMES):
        return "flat"
    if own_split_folders(root):
        return "flat"
    if any(_is_csv(f) for f in os.listdir(root)):
        return "csv"
    return None


def _wrong_layout(root, layout, expected):
    """The one-line error for a folder that is not in ``layout``."""
    try:
        guess = detect_layout(root)
    except (OSError, NanosegError):     # e.g. both val/ and valid/: keep the layout error
        guess = None
    hint = " (it looks like layout {!r})".format(guess) if guess and guess != layout else ""
    return NanosegError("{} is not a {} dataset: expected {}, found {}{}".format(
        root, layout, expected, _found_text(root), hint))


def _find_folder(root, given, candidates, what, layout):
    """A folder given by flag (relative to root or absolute), or found by name, any case."""
    if given:
        path = given if os.path.isabs(given) else os.path.join(root, given)
        if not os.path.isdir(path):
            raise NanosegError("{} folder not found: {} (check the {}_dir argument)".format(
                what, path, what))
        return path
    by_lower = {}
    for name in _subfolders(root):
        by_lower.setdefault(name.lower(), name)
    for candidate in candidates:
        if candidate in by_lower:
            return os.path.join(root, by_lower[candidate])
    raise _wrong_layout(root, layout, "an images/ folder and a masks/ (or labels/) folder, "
                        "or images_dir/masks_dir")


def pair_files(images_dir, masks_dir):
    """Samples paired by relative path without extension; anything unpaired is an error."""
    images, masks = _list_by_key(images_dir), _list_by_key(masks_dir)
    if not images:
        raise NanosegError("no image files ({}) in {}: put the images there or point "
                           "images_dir at them".format(" ".join(IMAGE_EXTENSIONS), images_dir))
    for key, path in images.items():
        if key not in masks:
            raise NanosegError("image {} has no mask: expected {}.png (or .jpg ...) in {}; add "
                               "the mask or remove the image".format(path, key, masks_dir))
    for key, path in masks.items():
        if key not in images:
            raise NanosegError("mask {} has no image: expected {}.jpg (or .png ...) in {}; add "
                               "the image or remove the mask".format(path, key, images_dir))
    return [Sample(images[key], masks[key], key) for key in sorted(images)]


# -- deterministic split ---------------------------------------------------------------------
def split_samples(samples, val_fraction=0.2, seed=0):
    """Seeded (train, val) partition, independent of listing order and numpy version.

    Samples are sorted by name, shuffled with ``RandomState(seed)`` (its stream is frozen
    across numpy releases) and the first ``round(n * val_fraction)`` (at least one when
    n >= 2) go to val.
    """
    if not 0.0 < float(val_fraction) < 1.0:
        raise NanosegError("val_fraction must be between 0 and 1 (exclusive), got {}".format(
            val_fraction))
    ordered = sorted(samples, key=lambda s: s.name)
    count = len(ordered)
    n_val = min(max(int(round(count * float(val_fraction))), 1 if count >= 2 else 0),
                count - 1) if count else 0
    order = np.random.RandomState(int(seed)).permutation(count)
    val_index = set(int(i) for i in order[:n_val])
    train = [s for i, s in enumerate(ordered) if i not in val_index]
    val = [s for i, s in enumerate(ordered) if i in val_index]
    return train, val


def write_split_csv(path, splits):
    """Save ``{split: [Sample]}`` as a manifest CSV (image, mask, split), atomically.

    Paths are relative to the CSV's folder, so the CSV is itself a ``csv``-layout dataset
    and the split reproduces on another machine with the same folder.
    """
    folder = os.path.dirname(os.path.abspath(path))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "mask", "split"])
    for split in sorted(splits):
        for sample in splits[split]:
            writer.writerow([_relative(sample.image_path, folder),
                             _relative(sample.mask_path, folder), split])
    if not os.path.isdir(folder):
        os.makedirs(folder)
    write_text_atomic(path, buffer.getvalue())
    LOG.info("wrote split %s (%s)", path, ", ".join(
        "{} {}".format(len(splits[s]), s) for s in sorted(splits)))


def _relative(path, folder):
    """``path`` relative to ``folder`` with forward slashes (portable across systems)."""
    return os.path.relpath(os.path.abspath(path), folder).replace(os.sep, "/")


def read_split_csv(path):
    """{split: [Sample]} of a manifest CSV (rows without a split go under 'all')."""
    rows = _read_manifest(path)
    splits = collections.OrderedDict()
    for sample, split in rows:
        splits.setdefault(split or "all", []).append(sample)
    return splits


# -- csv manifests -----------------------------------------------------------------------------
def _read_manifest(path, split_hint=None):
    """[(Sample, split or None)] of a CSV of relative paths; files must exist.

    ``split_hint``: the split of a per-split CSV (train.csv), used to find bare image names
    under ``<split folder>/images`` when the rows carry no split of their own.
    """
    try:
        with open(path, "r", newline="") as handle:
            rows = [r for r in csv.reader(handle) if any(cell.strip() for cell in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NanosegError("cannot read CSV {}: {}".format(path, exc))
    if not rows:
        raise NanosegError("CSV {} is empty: it needs an image column (a mask column too, "
                           "unless masks/ is beside images/)".format(path))
    columns = _manifest_columns(rows[0], path)
    if columns is None:
        columns, body = (0, 1, 2 if len(rows[0]) > 2 else None), rows
    else:
        body = rows[1:]
    folder = os.path.dirname(os.path.abspath(path))
    result = []
    first_row = 1 if body is rows else 2
    for number, row in enumerate(body, start=first_row):
        result.append(_manifest_row(row, columns, folder, path, number, split_hint))
    if not result:
        raise NanosegError("CSV {} has a header but no rows".format(path))
    return result


def _manifest_columns(header, path):
    """(image, mask or None, split) column indices from a header, or None without a header.

    No mask column (the nail tutorial's make_csv_file): each mask is found under the same
    name in the masks/ folder beside its image's images/ folder.
    """
    lower = [cell.strip().lower() for cell in header]

    def first(names):
        return next((lower.index(n) for n in names if n in lower), None)

    image, mask, split = first(CSV_IMAGE_COLUMNS), first(CSV_MASK_COLUMNS), \
        first(CSV_SPLIT_COLUMNS)
    if image is None and mask is None:
        looks_like_paths = len(header) >= 2 and all(
            _is_image_file(os.path.basename(c.strip())) for c in header[:2])
        if looks_like_paths:
            return None
    if image is None:
        raise NanosegError("CSV {} has columns {} but needs an image column ({}) and a mask "
                           "column ({}) or masks/ beside images/".format(
                               path, header, "/".join(CSV_IMAGE_COLUMNS[:3]),
                               "/".join(CSV_MASK_COLUMNS[:4])))
    return image, mask, split


def _manifest_row(row, columns, folder, path, line, split_hint=None):
    """One CSV row -> (Sample, split), checking both files exist."""
    image_col, mask_col, split_col = columns
    used = [c for c in columns if c is not None]
    if max(used) >= len(row):
        raise NanosegError("CSV {} row {} has {} cells, expected at least {}".format(
            path, line, len(row), max(used) + 1))
    split = None
    if split_col is not None:
        value = row[split_col].strip().lower()
        if value not in SPLIT_NAMES:
            raise NanosegError("CSV {} row {} has split {!r}: use train, valid/val or "
                               "test".format(path, line, row[split_col]))
        split = SPLIT_NAMES[value]
    relative = row[image_col].strip().replace("\\", "/")
    # A per-split CSV's own name decides where its bare names live: the tutorial's test.csv
    # flags its rows train=0 (not training), which is no folder of its own.
    image = _manifest_image(relative, folder, split_hint or split)
    if image is None:
        raise NanosegError("CSV {} row {} names {} which does not exist (paths are relative "
                           "to the CSV's folder, or file names under <split>/images beside "
                           "it): fix the row or delete the CSV to make a new one".format(
                               path, line, os.path.normpath(os.path.join(folder, relative))))
    if mask_col is None:
        mask = _mask_beside(image, path, line)
    else:
        mask = os.path.normpath(os.path.join(folder, row[mask_col].strip().replace("\\",
                                                                                 "/")))
        if not os.path.isfile(mask):
            raise NanosegError("CSV {} row {} names {} which does not exist (paths are "
                               "relative to the CSV's folder): fix the row or delete the CSV "
                               "to make a new one".format(path, line, mask))
    name = os.path.splitext(relative)[0]
    return Sample(image, mask, name), split


def _manifest_image(relative, folder, split):
    """The image a CSV cell names: relative to the CSV's folder, or, for the tutorial's
    bare names, under ``<split folder>/images/`` of the CSV's folder or of its parent."""
    direct = os.path.normpath(os.path.join(folder, relative))
    if os.path.isfile(direct):
        return direct
    split_names = SPLIT_FOLDER_NAMES.get(split) if split else \
        [n for names in SPLIT_FOLDER_NAMES.values() for n in names]
    for base in (folder, os.path.dirname(folder)):
        for split_folder in _existing(base, split_names):
            for images in _existing(split_folder, IMAGE_FOLDER_NAMES):
                candidate = os.path.normpath(os.path.join(images, relative))
                if os.path.isfile(candidate):
                    return candidate
    return None


def _existing(base, names):
    """Subfolders of ``base`` whose lower-case name is in ``names``, in ``names`` order."""
    if not os.path.isdir(base):
        return []
    by_lower = dict((name.lower(), name) for name in _subfolders(base))
    return [os.path.join(base, by_lower[n]) for n in names if n in by_lower]


def _mask_beside(image, path, line):
    """The mask of ``image`` in the masks/ (labels/...) folder beside its images/ folder,
    same relative name, any image extension (the image's own first)."""
    images_root = os.path.dirname(image)
    while os.path.basename(images_root).lower() not in IMAGE_FOLDER_NAMES:
        parent = os.path.dirname(images_root)
        if parent == images_root:
            raise NanosegError("CSV {} row {}: it has no mask column and {} is not inside an "
                               "images/ folder with a masks/ folder beside it: add a mask "
                               "column".format(path, line, image))
        images_root = parent
    key = os.path.splitext(os.path.relpath(image, images_root))[0]
    extensions = (os.path.splitext(image)[1],) + IMAGE_EXTENSIONS
    for masks in _existing(os.path.dirname(images_root), MASK_FOLDER_NAMES):
        for ext in extensions:
            for candidate in (os.path.join(masks, key + ext), os.path.join(masks, key
                                                                           + ext.upper())):
                if os.path.isfile(candidate):
                    return candidate
    raise NanosegError("CSV {} row {}: it has no mask column and no mask {}.png (or .jpg ...) "
                       "was found in a masks/ folder beside {}: add the mask or a mask "
                       "column".format(path, line, key, images_root))


def _csv_files(root):
    """{split or None: csv path} for a CSV file, or a folder of one or per-split CSVs."""
    if os.path.isfile(root):
        return {None: root}
    if not os.path.isdir(root):
        raise NanosegError("CSV manifest not found: {}".format(root))
    csv_folder = _csv_folder(root)
    if csv_folder != root:
        LOG.info("CSV manifests of %s are in %s", root, csv_folder)
        root = csv_folder
    found = {}
    for name in sorted(filter(_is_csv, os.listdir(root))):
        stem = os.path.splitext(name)[0]
        found[SPLIT_NAMES.get(stem.lower(), name)] = os.path.join(root, name)
    per_split = {k: v for k, v in found.items() if k in ("train", "val", "test")}
    if per_split:
        return per_split
    if len(found) == 1:
        return {None: list(found.values())[0]}
    raise _wrong_layout(root, "csv", "a .csv manifest (image, mask, split columns) or "
                        "train.csv + valid.csv")


def _csv_folder(root):
    """``root``, or its csv_file/ folder (the nail tutorial's) when only that holds CSVs."""
    if any(_is_csv(name) for name in os.listdir(root)):
        return root
    for name in _subfolders(root):
        folder = os.path.join(root, name)
        if name.lower() in CSV_FOLDER_NAMES and any(_is_csv(n) for n in os.listdir(folder)):
            return folder
    return root


def _is_csv(name):
    """CSV manifests by extension; hidden files (._train.csv) are never manifests."""
    return name.lower().endswith(".csv") and not name.startswith(".")


# -- layouts -----------------------------------------------------------------------------------
def _apply_split(samples, split, val_fraction, seed, split_csv, source):
    """The ``split`` of samples that come without one: seeded, saved to/read from split_csv."""
    if split == "all":
        return samples
    if split == "test":
        raise NanosegError("{} has no test split (only a seeded train/val split): use split "
                           "train, val or all".format(source))
    if split_csv and os.path.isfile(split_csv):
        saved = read_split_csv(split_csv)
        _warn_unlisted(samples, saved, split_csv)
        LOG.info("split %s of %s read from %s", split, source, split_csv)
        # The dataset's own samples, so names (golden.npz, --save-masks) do not depend on
        # where the split file lives (its rows are paths relative to its own folder).
        own = {os.path.abspath(s.image_path): s for s in samples}
        return [own.get(os.path.abspath(s.image_path), s) for s in saved.get(split, [])]
    train, val = split_samples(samples, val_fraction, seed)
    if split_csv:
        write_split_csv(split_csv, {"train": train, "val": val})
    return train if split == "train" else val


def _warn_unlisted(samples, saved, split_csv):
    """Images added after the split was saved are left out: say so rather than silently."""
    listed = {os.path.abspath(s.image_path) for group in saved.values() for s in group}
    missing = [s.image_path for s in samples if os.path.abspath(s.image_path) not in listed]
    if missing:
        LOG.warning("%d images are not in split file %s and are left out (e.g. %s); delete "
                    "it to make a new split", len(missing), split_csv, missing[0])


def _open_flat(root, split, classes, images_dir, masks_dir, val_fraction, seed, split_csv,
               mask_invert=False):
    """images/ + masks/ (any case, nested subfolders): its own split folders or a seeded one."""
    names, ids, decoder = _flat_classes(classes, mask_invert)
    own = None if _has_folder(root, images_dir, IMAGE_FOLDER_NAMES) else \
        own_split_folders(root, images_dir, masks_dir)
    if own:
        chosen = _folder_split_samples(root, own, split, images_dir, masks_dir)
        if split_csv:
            LOG.info("%s has its own split (%s): split file %s is not used", root,
                     ", ".join(os.path.basename(f) + "/" for f in own.values()), split_csv)
    else:
        _refuse_one_split_folder(root, split, split_csv, images_dir, masks_dir)
        images = _find_folder(root, images_dir, IMAGE_FOLDER_NAMES, "images", "flat")
        masks = _find_folder(root, masks_dir, MASK_FOLDER_NAMES, "masks", "flat")
        samples = pair_files(images, masks)
        chosen = _apply_split(samples, split, val_fraction, seed, split_csv, root)
    return SegmentationDataset(chosen, names, ids, None, decoder, root, "flat", split)


def _has_folder(root, given, candidates):
    """True when ``root`` holds the folder given by flag or one of ``candidates`` (any case)."""
    if given:
        path = given if os.path.isabs(given) else os.path.join(root, given)
        return os.path.isdir(path)
    return any(name.lower() in candidates for name in _subfolders(root))


def own_split_folders(root, images_dir=None, masks_dir=None):
    """{split: folder} of ``root``'s train/ valid/ (val/) test/ that hold images + masks.

    A split folder with images but no masks (an unlabelled test set) is not a split: it is
    logged and left out. Two folders for one split (val/ and valid/) are an error.
    """
    by_lower = dict((name.lower(), name) for name in _subfolders(root))
    found = collections.OrderedDict()
    for split, folder_names in SPLIT_FOLDER_NAMES.items():
        present = [by_lower[n] for n in folder_names if n in by_lower]
        if len(present) > 1:
            raise NanosegError("{} has {} for the {} split: keep one of them".format(
                root, " and ".join(p + "/" for p in present), split))
        if not present:
            continue
        folder = os.path.join(root, present[0])
        if _has_folder(folder, images_dir, IMAGE_FOLDER_NAMES) and \
                _has_folder(folder, masks_dir, MASK_FOLDER_NAMES):
            found[split] = folder
        elif _has_folder(folder, images_dir, IMAGE_FOLDER_NAMES):
            LOG.info("%s has images but no masks folder: not used as the %s split", folder,
                     split)
    return found


def _folder_split_samples(root, own, split, images_dir, masks_dir):
    """The samples of ``split`` (or of every split folder for 'all')."""
    if split != "all" and split not in own:
        expected = " or ".join(n + "/" for n in SPLIT_FOLDER_NAMES[split])
        folders = ", ".join(os.path.basename(f) + "/" for f in own.values())
        raise NanosegError("{} has no {} split folder ({}) with images/ and masks/; its split "
                           "folders are {}: use --split {} or all".format(
                               root, split, expected, folders, ", ".join(own)))
    samples = []
    for which, folder in own.items():
        if split in ("all", which):
            samples.extend(pair_files(
                _find_folder(folder, images_dir, IMAGE_FOLDER_NAMES, "images", "flat"),
                _find_folder(folder, masks_dir, MASK_FOLDER_NAMES, "masks", "flat")))
    return samples


def _refuse_one_split_folder(root, split, split_csv, images_dir, masks_dir):
    """``--data ROOT/train`` would make a seeded split and silently ignore ROOT/valid/.

    Only a probe: a parent that cannot be listed, or is itself ambiguous, skips the check.
    """
    if split == "all" or (split_csv and os.path.isfile(split_csv)):
        return
    parent = os.path.dirname(root)
    try:
        own = own_split_folders(parent, images_dir, masks_dir) if parent != root else {}
    except (OSError, NanosegError) as exc:
        LOG.debug("split folders of %s not checked: %s", parent, exc)
        return
    if len(own) > 1 and root in own.values():
        raise NanosegError("{} is one split folder of {}, which comes split ({}): pass --data "
                           "{} to use its own train/validation split, or --split all to use "
                           "this folder alone (e.g. to score it)".format(root, parent, ", ".join(
                               os.path.basename(f) + "/" for f in own.values()), parent))


def _open_csv(root, split, classes, val_fraction, seed, split_csv, mask_invert=False):
    """A manifest with a split column, one CSV per split, or one without (seeded split)."""
    names, ids, decoder = _flat_classes(classes, mask_invert)
    files = _csv_files(root)
    if None in files:
        rows = _read_manifest(files[None])
        if any(s is None for _, s in rows):
            chosen = _apply_split([r for r, _ in rows], split, val_fraction, seed, split_csv,
                                  files[None])
        else:
            chosen = [r for r, s in rows if split == "all" or s == split]
    else:
        chosen = []
        for which, path in sorted(files.items()):
            if split in ("all", which):
                chosen.extend(r for r, _ in _read_manifest(path, which))
    return SegmentationDataset(chosen, names, ids, None, decoder, root, "csv", split)


def _open_camvid(root, split, classes):
    """SegNet-style CamVid: chosen classes -> 1..N, the rest 0, Unlabelled (11) -> 255."""
    expected = "train/ + trainannot/ (and val/ valannot/, test/ testannot/)"
    folders = {d.lower(): d for d in _subfolders(root)}
    available = [s for s, pair in CAMVID_SPLIT_FOLDERS.items()
                 if all(f in folders for f in pair)]
    if not available:
        raise _wrong_layout(root, "camvid", expected)
    if split != "all" and split not in available:
        raise NanosegError("{} has no {}/ + {}annot/ folders for split {!r}: available splits "
                           "are {}".format(root, split, split, split, ", ".join(available)))
    pairs = [CAMVID_SPLIT_FOLDERS[s] for s in (available if split == "all" else [split])]
    samples = []
    for image_folder, mask_folder in pairs:
        samples.extend(pair_files(os.path.join(root, folders[image_folder]),
                                  os.path.join(root, folders[mask_folder])))
    chosen = select_classes(_class_list(classes) or list(CAMVID_CLASSES), CAMVID_SELECTABLE,
                            "camvid", CAMVID_ALIASES)
    mapping = {i: 0 for i in range(len(CAMVID_CLASSES))}
    mapping[CAMVID_UNLABELLED] = IGNORE_ID
    mapping.update((source_id, label + 1) for label, source_id in enumerate(chosen))
    decoder = IdMaskDecoder(mapping, "CamVid", "CamVid annotations hold ids 0..11; is this the "
                            "trainannot/ folder of a CamVid copy?")
    return SegmentationDataset(samples, [CAMVID_SELECTABLE[i] for i in chosen], chosen,
                               [CAMVID_COLORS[i] for i in chosen], decoder, root, "camvid", split)


def _open_voc(root, split, classes, voc_decoder="auto"):
    """Pascal VOC: chosen classes -> 1..N, 255 borders kept; a subset skips empty images."""
    expected = "JPEGImages/, SegmentationClass/ and ImageSets/Segmentation/{train,val}.txt"
    images_dir, masks_dir = os.path.join(root, "JPEGImages"), os.path.join(root,
                                                                            "SegmentationClass")
    if not (os.path.isdir(images_dir) and os.path.isdir(masks_dir)):
        raise _wrong_layout(root, "voc", expected)
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
    chosen = [i + 1 for i in select_classes(_class_list(classes) or real, real, "voc",
                                            VOC_ALIASES)]
    mapping = {i: 0 for i in range(len(VOC_CLASSES))}
    mapping.update((source_id, label + 1) for label, source_id in enumerate(chosen))
    mapping[IGNORE_ID] = IGNORE_ID
    ids = IdMaskDecoder(mapping, "VOC", "VOC masks hold indices 0..20 and 255")
    decoder = VocMaskDecoder(ids, voc_decoder)
    if len(chosen) < len(real):
        samples = _keep_with_classes(samples, decoder, len(chosen), root)
    palette = voc_palette()
    return SegmentationDataset(samples, [VOC_CLASSES[i] for i in chosen], chosen,
                               [palette[i].tolist() for i in chosen], decoder, root, "voc", split)


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
        present = _present_ids(decoder(sample.mask_path))
        if any(1 <= int(i) <= count for i in present):
            kept.append(sample)
    LOG.info("VOC %s: kept %d of %d images that contain the chosen classes", root, len(kept),
             len(samples))
    return kept


# -- the entry point -------------------------------------------------------------------------
def open_dataset(root, layout, split="train", classes=None, images_dir=None, masks_dir=None,
                 val_fraction=0.2, seed=0, split_csv=None, mask_invert=False):
    """Open ``root`` in ``layout`` and return the :class:`SegmentationDataset` of ``split``.

    ``classes``: flat/csv binary masks take one name (default "object") or ``name=id`` pairs
    for masks of ids; camvid/voc take class names (case-insensitive; default all classes).
    ``split_csv`` (flat/csv without a split): read the split from it if it exists, otherwise
    make the seeded split and save it there, so the next run reproduces it exactly.
    Flat datasets that come split (``train/ valid/ test/``, each with images/ + masks/) and
    the nail tutorial's csv_file/ CSVs use their own split. ``mask_invert`` (flat/csv binary
    masks): the dark value is the class.
    """
    if layout not in LAYOUTS:
        raise NanosegError("unknown dataset layout {!r}: use one of {}".format(
            layout, ", ".join(LAYOUTS)))
    if split not in SPLITS:
        raise NanosegError("unknown split {!r}: use one of {}".format(split, ", ".join(SPLITS)))
    root = os.path.abspath(str(root))
    if not os.path.exists(root):
        raise NanosegError("dataset not found: {} (check the dataset path)".format(root))
    if layout != "csv" and not os.path.isdir(root):
        raise NanosegError("dataset {} is a file; layout {!r} needs a folder (a CSV manifest "
                           "is layout 'csv')".format(root, layout))
    if split_csv and layout in ("camvid", "voc"):
        raise NanosegError("split_csv is for datasets without a split; {} datasets come with "
                           "their own train/val lists".format(layout))
    if mask_invert and layout in ("camvid", "voc"):
        raise NanosegError("mask_invert is for binary masks (flat/csv); {} masks hold class "
                           "ids: drop --mask-invert".format(layout))
    if layout == "flat":
        dataset = _open_flat(root, split, classes, images_dir, masks_dir, val_fraction, seed,
                             split_csv, mask_invert)
    elif layout == "csv":
        dataset = _open_csv(root, split, classes, val_fraction, seed, split_csv, mask_invert)
    elif layout == "camvid":
        dataset = _open_camvid(root, split, classes)
    else:
        dataset = _open_voc(root, split, classes)
    if not len(dataset):
        raise NanosegError("split {!r} of {} has no samples{}".format(
            split, root, " containing {}".format(", ".join(dataset.class_names))
            if layout == "voc" else ""))
    LOG.info("%r", dataset)
    return dataset
