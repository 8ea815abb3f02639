"""Layout ``flat``: ``images/`` + ``masks/`` (or ``labels/``, or any two folders given).

Files pair by path without extension, nested subfolders included (``Images/1..4`` +
``Masks/1..4``). A dataset that comes split (``train/ valid/`` or ``val/``, ``test/``, each with
images + masks) keeps that split, others get a seeded one. Masks are binary (0/255, 0/1, noisy
JPEG; ``mask_invert`` when the dark value is the class) or class ids given as ``name=id``.
"""
import logging
import os

from nanoseg.datasets.classes import binary_or_id_classes
from nanoseg.datasets.dataset import SegmentationDataset
from nanoseg.datasets.pairing import (IMAGE_FOLDER_NAMES, MASK_FOLDER_NAMES,
                                      SPLIT_FOLDER_NAMES, find_folder, has_folder,
                                      own_split_folders, pair_files, subfolders)
from nanoseg.datasets.splits import apply_split
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)


def looks_like(root):
    """An images and a masks folder, or split folders that each hold both."""
    if not os.path.isdir(root):
        return False
    lower = {d.lower() for d in subfolders(root)}
    if lower & set(IMAGE_FOLDER_NAMES) and lower & set(MASK_FOLDER_NAMES):
        return True
    return bool(own_split_folders(root))


def open_flat(root, split, classes, images_dir, masks_dir, val_fraction, seed, split_csv,
              mask_invert=False, split_root=None):
    """images/ + masks/ (any case, nested subfolders): its own split folders or a seeded one."""
    names, ids, decoder = binary_or_id_classes(classes, mask_invert)
    own = None if has_folder(root, images_dir, IMAGE_FOLDER_NAMES) else \
        own_split_folders(root, images_dir, masks_dir)
    if own:
        chosen = _folder_split_samples(root, own, split, images_dir, masks_dir)
        if split_csv:
            LOG.info("%s has its own split (%s): split file %s is not used", root,
                     ", ".join(os.path.basename(f) + "/" for f in own.values()), split_csv)
    else:
        _refuse_one_split_folder(root, split, split_csv, images_dir, masks_dir)
        images = find_folder(root, images_dir, IMAGE_FOLDER_NAMES, "images", "flat")
        masks = find_folder(root, masks_dir, MASK_FOLDER_NAMES, "masks", "flat")
        samples = pair_files(images, masks)
        chosen = apply_split(samples, split, val_fraction, seed, split_csv, root, split_root)
    return SegmentationDataset(chosen, names, ids, None, decoder, root, "flat", split)


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
                find_folder(folder, images_dir, IMAGE_FOLDER_NAMES, "images", "flat"),
                find_folder(folder, masks_dir, MASK_FOLDER_NAMES, "masks", "flat")))
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
