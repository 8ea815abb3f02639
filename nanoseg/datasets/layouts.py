"""The dataset layouts: one row each, with its opener and the options it takes.

Adding a layout is one module (``open_x(root, split, classes, **options)`` and
``looks_like(root)``) plus one row here; the CLIs take their ``--layout`` choices and which
data flags each layout allows from this table.
"""
import collections
import logging
import os

from nanoseg.datasets import camvid, csv_layout, flat, voc
from nanoseg.datasets.splits import SPLITS
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

Layout = collections.namedtuple("Layout", [
    "name",          # the --layout value
    "open",          # open(root, split, classes, **the options its capabilities let through)
    "looks_like",    # looks_like(root) -> bool, for detect_layout
    "specificity",   # detect_layout asks higher first: distinctive folder sets before the
                     # generic images/ + masks/, loose CSV files last
    "binary_masks",  # masks may be binary: takes mask_invert (--mask-invert)
    "seeded_split",  # data may come without a split: takes val_fraction, seed and split_csv
    "folders",       # its image and mask folders can be named: images_dir, masks_dir
    "file_root",     # the dataset may be a file (a CSV manifest) instead of a folder
])

LAYOUTS = collections.OrderedDict((row.name, row) for row in (
    Layout("flat", flat.open_flat, flat.looks_like, specificity=1, binary_masks=True,
           seeded_split=True, folders=True, file_root=False),
    Layout("csv", csv_layout.open_csv, csv_layout.looks_like, specificity=0, binary_masks=True,
           seeded_split=True, folders=False, file_root=True),
    Layout("camvid", camvid.open_camvid, camvid.looks_like, specificity=2, binary_masks=False,
           seeded_split=False, folders=False, file_root=False),
    Layout("voc", voc.open_voc, voc.looks_like, specificity=3, binary_masks=False,
           seeded_split=False, folders=False, file_root=False),
))
LAYOUT_NAMES = tuple(LAYOUTS)

# The open_dataset keywords each capability lets through to a layout's opener.
CAPABILITY_OPTIONS = (("binary_masks", ("mask_invert",)),
                      ("seeded_split", ("val_fraction", "seed", "split_csv", "split_root")),
                      ("folders", ("images_dir", "masks_dir")))


def layouts_with(capability):
    """Names of the layouts whose row has ``capability`` (e.g. 'binary_masks'), in order."""
    return tuple(name for name, row in LAYOUTS.items() if getattr(row, capability))


def layout_row(layout):
    """The table row of ``layout``, or a one-line error listing the layouts."""
    if layout not in LAYOUTS:
        raise NanosegError("unknown dataset layout {!r}: use one of {}".format(
            layout, ", ".join(LAYOUTS)))
    return LAYOUTS[layout]


def open_dataset(root, layout, split="train", classes=None, images_dir=None, masks_dir=None,
                 val_fraction=0.2, seed=0, split_csv=None, mask_invert=False, split_root=None):
    """Open ``root`` in ``layout`` and return the :class:`SegmentationDataset` of ``split``.

    ``classes``: flat/csv binary masks take one name (default "object") or ``name=id`` pairs
    for masks of ids; camvid/voc take class names (case-insensitive; default all classes).
    ``split_csv`` (layouts with a seeded split, when the data comes without one): read the
    split from it if it exists, otherwise make the seeded split and save it there, so the
    next run reproduces it exactly; ``split_root``: its paths are relative to that dataset
    root instead of its own folder (a bundle's split.csv). Flat datasets that come split (``train/ valid/ test/``,
    each with images/ + masks/) and the nail tutorial's csv_file/ CSVs use their own split.
    ``mask_invert`` (binary masks): the dark value is the class. Options a layout does not
    take are not passed to it (``images_dir`` of a csv dataset is ignored).
    """
    row = layout_row(layout)
    if split not in SPLITS:
        raise NanosegError("unknown split {!r}: use one of {}".format(split, ", ".join(SPLITS)))
    root = os.path.abspath(str(root))
    if not os.path.exists(root):
        raise NanosegError("dataset not found: {} (check the dataset path)".format(root))
    if not row.file_root and not os.path.isdir(root):
        raise NanosegError("dataset {} is a file; layout {!r} needs a folder (a CSV manifest "
                           "is layout 'csv')".format(root, layout))
    if split_csv and not row.seeded_split:
        raise NanosegError("split_csv is for datasets without a split; {} datasets come with "
                           "their own train/val lists".format(layout))
    if mask_invert and not row.binary_masks:
        raise NanosegError("mask_invert is for binary masks ({}); {} masks hold class "
                           "ids: drop --mask-invert".format("/".join(layouts_with(
                               "binary_masks")), layout))
    given = dict(images_dir=images_dir, masks_dir=masks_dir, val_fraction=val_fraction,
                 seed=seed, split_csv=split_csv, mask_invert=mask_invert,
                 split_root=split_root)
    options = dict((key, given[key]) for capability, keys in CAPABILITY_OPTIONS
                   if getattr(row, capability) for key in keys)
    dataset = row.open(root, split, classes, **options)
    if not len(dataset):
        raise NanosegError("split {!r} of {} has no samples".format(split, root))
    LOG.info("%r", dataset)
    return dataset


def detect_layout(root):
    """The layout ``root`` looks like (a name of :data:`LAYOUTS`) or None."""
    for row in sorted(LAYOUTS.values(), key=lambda r: -r.specificity):
        if row.looks_like(root):
            return row.name
    return None
