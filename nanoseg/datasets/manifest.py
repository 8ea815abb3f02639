"""CSV manifests: rows of relative image (and mask) paths, with an optional split column.

Read by the csv layout and by :func:`nanoseg.datasets.splits.read_split_csv` (a saved split
is itself a manifest).
"""
import csv
import os

from nanoseg.datasets.dataset import Sample
from nanoseg.datasets.pairing import (IMAGE_EXTENSIONS, IMAGE_FOLDER_NAMES, MASK_FOLDER_NAMES,
                                      SPLIT_FOLDER_NAMES, existing, is_image_file)
from nanoseg.errors import NanosegError

# How a split column's cells (and per-split CSV file names) spell the splits.
SPLIT_NAMES = {"train": "train", "training": "train", "1": "train", "true": "train",
               "val": "val", "valid": "val", "validation": "val", "0": "val", "false": "val",
               "test": "test", "testing": "test"}
CSV_IMAGE_COLUMNS = ("image", "images", "image_path", "img", "img_path", "imagepath", "x")
CSV_MASK_COLUMNS = ("mask", "masks", "mask_path", "label", "labels", "label_path",
                    "annotation", "maskpath", "y")
CSV_SPLIT_COLUMNS = ("split", "set", "subset", "phase", "fold", "train", "is_train")


def is_csv(name):
    """CSV manifests by extension; hidden files (._train.csv) are never manifests."""
    return name.lower().endswith(".csv") and not name.startswith(".")


def read_manifest(path, split_hint=None, base=None):
    """[(Sample, split or None)] of a CSV of relative paths; files must exist.

    ``split_hint``: the split of a per-split CSV (train.csv), used to find bare image names
    under ``<split folder>/images`` when the rows carry no split of their own. ``base``: the
    folder the paths are relative to (default: the CSV's own folder).
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
    folder = os.path.abspath(base) if base else os.path.dirname(os.path.abspath(path))
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
            is_image_file(os.path.basename(c.strip())) for c in header[:2])
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
                           "to {}, or file names under <split>/images beside it): fix the row "
                           "or delete the CSV to make a new one".format(
                               path, line, os.path.normpath(os.path.join(folder, relative)),
                               folder))
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
        for split_folder in existing(base, split_names):
            for images in existing(split_folder, IMAGE_FOLDER_NAMES):
                candidate = os.path.normpath(os.path.join(images, relative))
                if os.path.isfile(candidate):
                    return candidate
    return None


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
    for masks in existing(os.path.dirname(images_root), MASK_FOLDER_NAMES):
        for ext in extensions:
            for candidate in (os.path.join(masks, key + ext), os.path.join(masks, key
                                                                           + ext.upper())):
                if os.path.isfile(candidate):
                    return candidate
    raise NanosegError("CSV {} row {}: it has no mask column and no mask {}.png (or .jpg ...) "
                       "was found in a masks/ folder beside {}: add the mask or a mask "
                       "column".format(path, line, key, images_root))
