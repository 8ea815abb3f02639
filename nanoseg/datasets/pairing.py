"""Finding a dataset's image and mask folders and pairing their files into samples."""
import collections
import logging
import os

from nanoseg.datasets.dataset import Sample
from nanoseg.errors import NanosegError
from nanoseg.files import sample_name

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
IMAGE_FOLDER_NAMES = ("images", "image", "imgs", "img")
MASK_FOLDER_NAMES = ("masks", "mask", "labels", "label", "annotations", "annotation")
# Split folders of a dataset that comes split (ROOT/train/images, ROOT/valid/masks, ...).
SPLIT_FOLDER_NAMES = collections.OrderedDict([("train", ("train", "training")),
                                              ("val", ("valid", "val", "validation")),
                                              ("test", ("test", "testing"))])


def is_image_file(name):
    """Image files by extension; hidden files (.DS_Store, ._x.jpg) are never samples."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def list_by_key(folder):
    """{relative path without extension: path} of the image files under ``folder``."""
    found = {}
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not is_image_file(name):
                continue
            path = os.path.join(current, name)
            key = sample_name(path, folder)
            if key in found:
                raise NanosegError("{} and {} have the same name without extension, so masks "
                                   "cannot be paired: rename one".format(found[key], path))
            found[key] = path
    return found


def subfolders(root):
    """Visible subfolder names of ``root``, sorted."""
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                  and not d.startswith("."))


def existing(base, names):
    """Subfolders of ``base`` whose lower-case name is in ``names``, in ``names`` order."""
    if not os.path.isdir(base):
        return []
    by_lower = dict((name.lower(), name) for name in subfolders(base))
    return [os.path.join(base, by_lower[n]) for n in names if n in by_lower]


def _found_text(root):
    """'a/, b/, c.csv' — what a folder holds, for wrong-layout messages."""
    entries = sorted(os.listdir(root))
    shown = [e + "/" if os.path.isdir(os.path.join(root, e)) else e for e in entries[:12]]
    if len(entries) > 12:
        shown.append("...")
    return ", ".join(shown) if shown else "nothing (the folder is empty)"


def wrong_layout(root, layout, expected):
    """The one-line error for a folder that is not in ``layout``, with the layout it looks
    like."""
    # Imported here: the layout table imports every layout module, which import this one.
    from nanoseg.datasets.layouts import detect_layout
    try:
        guess = detect_layout(root)
    except (OSError, NanosegError):     # e.g. both val/ and valid/: keep the layout error
        guess = None
    hint = " (it looks like layout {!r})".format(guess) if guess and guess != layout else ""
    return NanosegError("{} is not a {} dataset: expected {}, found {}{}".format(
        root, layout, expected, _found_text(root), hint))


def find_folder(root, given, candidates, what, layout):
    """A folder given by flag (relative to root or absolute), or found by name, any case."""
    if given:
        path = given if os.path.isabs(given) else os.path.join(root, given)
        if not os.path.isdir(path):
            raise NanosegError("{} folder not found: {} (check the {}_dir argument)".format(
                what, path, what))
        return path
    by_lower = {}
    for name in subfolders(root):
        by_lower.setdefault(name.lower(), name)
    for candidate in candidates:
        if candidate in by_lower:
            return os.path.join(root, by_lower[candidate])
    raise wrong_layout(root, layout, "an images/ folder and a masks/ (or labels/) folder, "
                       "or images_dir/masks_dir")


def has_folder(root, given, candidates):
    """True when ``root`` holds the folder given by flag or one of ``candidates`` (any case)."""
    if given:
        path = given if os.path.isabs(given) else os.path.join(root, given)
        return os.path.isdir(path)
    return any(name.lower() in candidates for name in subfolders(root))


def pair_files(images_dir, masks_dir):
    """Samples paired by relative path without extension; anything unpaired is an error."""
    images, masks = list_by_key(images_dir), list_by_key(masks_dir)
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


def own_split_folders(root, images_dir=None, masks_dir=None):
    """{split: folder} of ``root``'s train/ valid/ (val/) test/ that hold images + masks.

    A split folder with images but no masks (an unlabelled test set) is not a split: it is
    logged and left out. Two folders for one split (val/ and valid/) are an error.
    """
    by_lower = dict((name.lower(), name) for name in subfolders(root))
    found = collections.OrderedDict()
    for split, folder_names in SPLIT_FOLDER_NAMES.items():
        present = [by_lower[n] for n in folder_names if n in by_lower]
        if len(present) > 1:
            raise NanosegError("{} has {} for the {} split: keep one of them".format(
                root, " and ".join(p + "/" for p in present), split))
        if not present:
            continue
        folder = os.path.join(root, present[0])
        if has_folder(folder, images_dir, IMAGE_FOLDER_NAMES) and \
                has_folder(folder, masks_dir, MASK_FOLDER_NAMES):
            found[split] = folder
        elif has_folder(folder, images_dir, IMAGE_FOLDER_NAMES):
            LOG.info("%s has images but no masks folder: not used as the %s split", folder,
                     split)
    return found
