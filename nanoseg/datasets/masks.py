"""Reading image and mask files, and the decoders that turn a mask file into labels.

Decoding is OpenCV. Decoders are classes, not closures: Keras workers may pickle them.
"""
import os

import cv2
import numpy as np

from nanoseg.errors import NanosegError
from nanoseg.imagefile import incomplete_reason
from nanoseg.preprocess import IMAGE_READ_FLAGS

BINARY_THRESHOLD = 127
MASK_SHARE_SAMPLES = 16


def read_image_rgb(path):
    """Decode an image file to RGB uint8 HxWx3, or say which file is broken."""
    if not os.path.isfile(path):
        raise NanosegError("image not found: {} (was it moved or deleted after the dataset "
                           "was listed?)".format(path))
    image = cv2.imread(path, IMAGE_READ_FLAGS)
    if image is None:
        raise NanosegError("cannot read image {}: it is not an image OpenCV can decode or it "
                           "is corrupt; replace or remove it".format(path))
    check_whole(path, "image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def check_whole(path, what):
    """A one-line error naming ``path`` when the file decoded only partly (cut short)."""
    reason = incomplete_reason(path)
    if reason:
        raise NanosegError("{} {} is truncated ({}): only part of it decodes; replace it or "
                           "remove the sample from the dataset".format(what, path, reason))


def read_mask_raw(path):
    """The mask file's stored values (IMREAD_UNCHANGED: no colour conversion, no EXIF)."""
    if not os.path.isfile(path):
        raise NanosegError("mask not found: {} (was it moved or deleted after the dataset was "
                           "listed?)".format(path))
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise NanosegError("cannot read mask {}: it is not an image OpenCV can decode or it "
                           "is corrupt; replace or remove it".format(path))
    check_whole(path, "mask")
    if mask.dtype != np.uint8:
        raise NanosegError("mask {} is {}, expected 8-bit: save masks as 8-bit PNG".format(
            path, mask.dtype))
    return mask


def single_channel(mask, path, what):
    """A 2-D view of an id mask; a 3-channel copy of one grey plane is accepted."""
    if mask.ndim == 2:
        return mask
    planes = mask[:, :, :3]
    if np.array_equal(planes[:, :, 0], planes[:, :, 1]) and \
            np.array_equal(planes[:, :, 0], planes[:, :, 2]):
        return np.ascontiguousarray(planes[:, :, 0])
    raise NanosegError("mask {} has colours, but {} masks store one class id per pixel (grey "
                       "PNG): convert it to ids".format(path, what))


def present_ids(mask):
    """Sorted ids that occur in a uint8 mask."""
    return np.flatnonzero(np.bincount(mask.ravel(), minlength=256))


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
        mask = single_channel(read_mask_raw(path), path, self.dataset_kind)
        return self.labels_from_ids(mask, path)

    def labels_from_ids(self, ids, path):
        """Map a 2-D id array to labels, naming the file if it holds an unexpected id."""
        unexpected = [int(i) for i in present_ids(ids) if int(i) not in self.mapping]
        if unexpected:
            raise NanosegError("mask {} contains ids {} that are not {} ids {}: {}".format(
                path, unexpected[:10], self.dataset_kind, sorted(self.mapping), self.fix))
        return self.table[ids]
