"""The dataset recipe: what a bundle records about its training data, to open it again.

Stored as ``contract.extra["dataset"]``; the keys are those bundles have always carried, so
any bundle's contract loads (keys this version does not know are kept as they are).
"""
import logging
import os

from nanoseg.datasets.layouts import layout_row, open_dataset
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

# (key, default when a contract lacks it), in the order the recipe writes them.
FIELDS = (("root", None), ("layout", None), ("classes_arg", None), ("images_dir", None),
          ("masks_dir", None), ("mask_invert", False), ("val_fraction", 0.2), ("seed", 0),
          ("train_images", None), ("val_images", None), ("split_csv", None),
          ("split_paths", None))

# split_paths: what the rows of the bundle's split file are relative to. "dataset": the
# dataset root (:func:`nanoseg.datasets.splits.split_base`), so the bundle can be copied
# anywhere; absent (bundles made before): the bundle folder where it was trained.
SPLIT_PATHS_DATASET = "dataset"
LATER_FIELDS = ("split_paths",)


class DatasetRecipe(object):
    """Root, layout, class and folder arguments, the split's seed and fraction, the split
    sizes and the bundle's split file name of a training run."""

    KEY = "dataset"     # where the recipe lives in ``contract.extra``

    def __init__(self, **values):
        unknown = set(values) - set(name for name, _ in FIELDS)
        if unknown:
            raise TypeError("unknown dataset recipe fields: {}".format(sorted(unknown)))
        for name, default in FIELDS:
            setattr(self, name, values.get(name, default))
        self.other = {}

    @classmethod
    def from_dict(cls, info):
        """The recipe of a stored dict; missing keys take their defaults, unknown ones are
        kept for :meth:`to_dict`."""
        info = dict(info or {})
        known = set(name for name, _ in FIELDS)
        recipe = cls(**dict((k, v) for k, v in info.items() if k in known))
        recipe.other = dict((k, v) for k, v in info.items() if k not in known)
        return recipe

    @classmethod
    def of(cls, contract):
        """The recipe a contract records (an empty one for a bundle that records none)."""
        return cls.from_dict(contract.extra.get(cls.KEY))

    def to_dict(self):
        """The JSON-ready dict stored in the contract (fields added later are left out while
        unset, so an older contract's recipe round-trips unchanged)."""
        info = dict(self.other)
        info.update((name, getattr(self, name)) for name, _ in FIELDS
                    if name not in LATER_FIELDS or getattr(self, name) is not None)
        return info

    def store(self, contract):
        """Record this recipe in ``contract.extra``."""
        contract.extra[self.KEY] = self.to_dict()

    def saved_split(self, bundle_dir):
        """The bundle's split file, if training wrote one and it is still there."""
        if not bundle_dir or not self.split_csv:
            return None
        path = os.path.join(str(bundle_dir), self.split_csv)
        return path if os.path.isfile(path) else None

    def open(self, split="val", data=None, layout=None, classes=None, bundle_dir=None):
        """The ``split`` of the training data, or of ``data``/``layout`` opened the same way.

        On the training data (``data`` not given) the split comes from ``bundle_dir``'s split
        file when it has one, so images added to the folder since training never move
        training images into validation, wherever the bundle was copied; a split file that
        does not resolve there is an error, never a silent new split. Other data in the
        same layout (e.g. the training data moved) uses the split file when every row
        resolves under it, else the seeded split rebuilt from the recipe's seed and
        fraction. The training run's folder names apply only to the same layout.
        """
        on_training_data = not data
        data = data or self.root
        layout = layout or self.layout
        if not data or not layout:
            raise NanosegError("the bundle does not record its dataset: pass --data and "
                               "--layout")
        row = layout_row(layout)
        classes = classes if classes is not None else self.classes_arg
        same_folders = on_training_data and layout == self.layout
        options = dict(split=split, classes=classes, val_fraction=self.val_fraction,
                       seed=self.seed,
                       mask_invert=bool(self.mask_invert) and row.binary_masks,
                       images_dir=self.images_dir if same_folders else None,
                       masks_dir=self.masks_dir if same_folders else None)
        split_csv = self.saved_split(bundle_dir) if layout == self.layout else None
        travels = self.split_paths == SPLIT_PATHS_DATASET
        if split_csv and row.seeded_split and (on_training_data or travels):
            try:
                return open_dataset(data, layout, split_csv=split_csv,
                                    split_root=data if travels else None, **options)
            except NanosegError as exc:
                if on_training_data:
                    raise NanosegError(self._unresolved(split_csv, exc, travels))
                LOG.warning("the saved split %s does not fit %s (%s): using the seeded split",
                            split_csv, data, exc)
        return open_dataset(data, layout, **options)

    def _unresolved(self, split_csv, exc, travels):
        """The one line for a bundle split file that no longer fits the training data."""
        if travels:
            return ("the bundle's split {} lists files that are not in the training data "
                    "{} ({}): the data changed since training; restore it, or pass --data "
                    "and --layout to score other data".format(split_csv, self.root, exc))
        return ("the bundle's split {} lists paths relative to the folder the bundle was "
                "trained in (bundles made before splits were saved relative to the dataset), "
                "which do not resolve from here ({}): use the bundle from a folder at its "
                "training location, or pass --data and --layout to score a new seeded "
                "split".format(split_csv, exc))
