"""Splits: the names, the seeded train/val partition, and the split CSV a bundle saves."""
import collections
import csv
import io
import logging
import os

import numpy as np

from nanoseg.datasets.manifest import read_manifest
from nanoseg.errors import NanosegError
from nanoseg.files import write_text_atomic

LOG = logging.getLogger(__name__)

SPLITS = ("train", "val", "test", "all")


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


def write_split_csv(path, splits, root=None):
    """Save ``{split: [Sample]}`` as a manifest CSV (image, mask, split), atomically.

    Paths are relative to the CSV's folder, so the CSV is itself a ``csv``-layout dataset
    and the split reproduces on another machine with the same folder; or, with ``root``
    (a dataset root), relative to :func:`split_base` of it, so the CSV can travel anywhere
    (a bundle's split.csv) and is read back with ``read_split_csv(path, root)``.
    """
    folder = os.path.dirname(os.path.abspath(path))
    relative_to = split_base(root) if root else folder
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "mask", "split"])
    for split in sorted(splits):
        for sample in splits[split]:
            writer.writerow([_relative(sample.image_path, relative_to),
                             _relative(sample.mask_path, relative_to), split])
    if not os.path.isdir(folder):
        os.makedirs(folder)
    write_text_atomic(path, buffer.getvalue())
    LOG.info("wrote split %s (%s)", path, ", ".join(
        "{} {}".format(len(splits[s]), s) for s in sorted(splits)))


def _relative(path, folder):
    """``path`` relative to ``folder`` with forward slashes (portable across systems)."""
    return os.path.relpath(os.path.abspath(path), folder).replace(os.sep, "/")


def split_base(root):
    """The folder a split file's paths are relative to for dataset ``root``: the root, or
    the folder of a CSV manifest root."""
    root = os.path.abspath(str(root))
    return root if os.path.isdir(root) else os.path.dirname(root)


def read_split_csv(path, root=None):
    """{split: [Sample]} of a manifest CSV (rows without a split go under 'all'); paths
    relative to the CSV's folder, or to :func:`split_base` of dataset ``root``."""
    rows = read_manifest(path, base=split_base(root) if root else None)
    splits = collections.OrderedDict()
    for sample, split in rows:
        splits.setdefault(split or "all", []).append(sample)
    return splits


def apply_split(samples, split, val_fraction, seed, split_csv, source, split_root=None):
    """The ``split`` of samples that come without one: seeded, saved to/read from split_csv
    (its paths relative to its folder, or to dataset ``split_root``)."""
    if split == "all":
        return samples
    if split == "test":
        raise NanosegError("{} has no test split (only a seeded train/val split): use split "
                           "train, val or all".format(source))
    if split_csv and os.path.isfile(split_csv):
        saved = _read_saved_split(split_csv, split_root, source)
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


def _read_saved_split(split_csv, split_root, source):
    """A split file's rows: relative to ``split_root`` when given; else to the file's own
    folder or, failing that, to the dataset ``source`` (a bundle's split.csv passed as
    --split-csv, whose rows are relative to the dataset)."""
    if split_root:
        return read_split_csv(split_csv, split_root)
    try:
        return read_split_csv(split_csv)
    except NanosegError as exc:
        try:
            return read_split_csv(split_csv, source)
        except NanosegError:
            raise exc


def _warn_unlisted(samples, saved, split_csv):
    """Images added after the split was saved are left out: say so rather than silently."""
    listed = {os.path.abspath(s.image_path) for group in saved.values() for s in group}
    missing = [s.image_path for s in samples if os.path.abspath(s.image_path) not in listed]
    if missing:
        LOG.warning("%d images are not in split file %s and are left out (e.g. %s); delete "
                    "it to make a new split", len(missing), split_csv, missing[0])
