"""Layout ``csv``: a manifest of relative paths (image, optional mask, optional split column),
or one CSV per split (``train.csv`` ``valid.csv`` ...), also in a ``csv_file/`` folder as the
nail tutorial's ``make_csv_file`` writes them (bare image names under ``<split>/images``,
masks of the same name under ``<split>/masks``). Masks as in the flat layout.
"""
import logging
import os

from nanoseg.datasets.classes import binary_or_id_classes
from nanoseg.datasets.dataset import SegmentationDataset
from nanoseg.datasets.manifest import SPLIT_NAMES, is_csv, read_manifest
from nanoseg.datasets.pairing import subfolders, wrong_layout
from nanoseg.datasets.splits import apply_split
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

# Where the nail tutorial's make_csv_file writes its per-split CSVs, under the dataset root.
CSV_FOLDER_NAMES = ("csv_file", "csv_files", "csv")


def looks_like(root):
    """A .csv file, or a folder holding one."""
    if os.path.isfile(root):
        return is_csv(os.path.basename(root))
    return os.path.isdir(root) and any(is_csv(f) for f in os.listdir(root))


def open_csv(root, split, classes, val_fraction, seed, split_csv, mask_invert=False,
             split_root=None):
    """A manifest with a split column, one CSV per split, or one without (seeded split)."""
    names, ids, decoder = binary_or_id_classes(classes, mask_invert)
    files = _csv_files(root)
    if None in files:
        rows = read_manifest(files[None])
        if any(s is None for _, s in rows):
            chosen = apply_split([r for r, _ in rows], split, val_fraction, seed, split_csv,
                                 files[None], split_root)
        else:
            chosen = [r for r, s in rows if split == "all" or s == split]
    else:
        chosen = []
        for which, path in sorted(files.items()):
            if split in ("all", which):
                chosen.extend(r for r, _ in read_manifest(path, which))
    return SegmentationDataset(chosen, names, ids, None, decoder, root, "csv", split)


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
    for name in sorted(filter(is_csv, os.listdir(root))):
        stem = os.path.splitext(name)[0]
        found[SPLIT_NAMES.get(stem.lower(), name)] = os.path.join(root, name)
    per_split = {k: v for k, v in found.items() if k in ("train", "val", "test")}
    if per_split:
        return per_split
    if len(found) == 1:
        return {None: list(found.values())[0]}
    raise wrong_layout(root, "csv", "a .csv manifest (image, mask, split columns) or "
                       "train.csv + valid.csv")


def _csv_folder(root):
    """``root``, or its csv_file/ folder (the nail tutorial's) when only that holds CSVs."""
    if any(is_csv(name) for name in os.listdir(root)):
        return root
    for name in subfolders(root):
        folder = os.path.join(root, name)
        if name.lower() in CSV_FOLDER_NAMES and any(is_csv(n) for n in os.listdir(folder)):
            return folder
    return root
