"""The model contract: what the model sees and what its output means, defined once.

Training, export, validation and the Jetson runtime all call
``nanoseg.preprocess.preprocess_image`` with a :class:`Contract` rebuilt from the JSON saved
next to every artifact, so the edge never types the numbers again (the same idea as
MMDeploy's ``pipeline.json``). The normalization it carries is ``nanoseg.normalization``.

Label space, used by readers, training, evaluation and the edge alike:
``0`` is background, ``1..N`` the chosen classes in order, :data:`IGNORE_ID` (255) is not
scored. A sigmoid model has one output channel (P(class 1)); a softmax model has one channel
per label, background first, so ``argmax`` *is* the label.

numpy + OpenCV only, Python 3.6 syntax: this module runs on the Jetson.
"""
import json
import numbers
import os

import numpy as np

from nanoseg.errors import NanosegError
from nanoseg.files import write_text_atomic
from nanoseg.normalization import Normalization
from nanoseg.preprocess import CHANNEL_ORDERS, INTERPOLATIONS

CONTRACT_FORMAT = "nanoseg-contract"
CONTRACT_VERSION = 1
IGNORE_ID = 255
LAYOUTS = ("NHWC", "NCHW")
ACTIVATIONS = ("sigmoid", "softmax")

# A readable default palette for label ids (RGB); background is black.
PALETTE = (
    (0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128),
)


def default_color(label_id):
    """The palette colour (RGB) of a label id."""
    return list(PALETTE[label_id % len(PALETTE)])


class Contract(object):
    """Everything the runtime needs to feed the model and read its output.

    Build one with :meth:`Contract.create` at training time; load one with :func:`load_contract`
    everywhere else. Fields are plain attributes; :meth:`to_dict` is the JSON form.
    """

    def __init__(self, height, width, channel_order, normalization, classes, activation,
                 threshold=0.5, ignore_id=IGNORE_ID, interpolation="linear",
                 mask_interpolation="nearest", layout="NHWC", backbone=None, versions=None,
                 artifacts=None, extra=None):
        self.height = int(height)
        self.width = int(width)
        self.channel_order = str(channel_order).upper()
        self.normalization = normalization
        self.classes = [dict(c) for c in classes]
        self.activation = str(activation)
        self.threshold = float(threshold)
        self.ignore_id = None if ignore_id is None else int(ignore_id)
        self.interpolation = str(interpolation)
        self.mask_interpolation = str(mask_interpolation)
        self.layout = str(layout).upper()
        self.backbone = backbone
        self.versions = dict(versions or {})
        self.artifacts = dict(artifacts or {})
        self.extra = dict(extra or {})
        self.validate()

    @classmethod
    def create(cls, height, width, class_names, activation, normalization,
               channel_order="RGB", source_ids=None, colors=None, **kwargs):
        """A contract for ``class_names`` (foreground classes, in label order 1..N).

        Background (label 0) is added in front; ``source_ids`` records which id each class
        had in the dataset (e.g. CamVid's 8 for car), ``colors`` overrides the palette.
        Names must differ without case: metrics and reports are keyed by name.
        """
        classes = [{"id": 0, "name": "background", "color": default_color(0)}]
        _check_unique_names(["background"] + [str(name) for name in class_names])
        for i, name in enumerate(class_names):
            entry = {"id": i + 1, "name": str(name),
                     "color": list(colors[i]) if colors else default_color(i + 1)}
            if source_ids is not None:
                entry["source_id"] = int(source_ids[i])
            classes.append(entry)
        return cls(height, width, channel_order, normalization, classes, activation, **kwargs)

    # -- derived facts -------------------------------------------------------------------
    @property
    def size(self):
        """(height, width) of the model input."""
        return (self.height, self.width)

    @property
    def num_labels(self):
        """Labels including background."""
        return len(self.classes)

    @property
    def output_channels(self):
        """1 for a sigmoid model, one per label (background first) for softmax."""
        return 1 if self.activation == "sigmoid" else self.num_labels

    @property
    def class_names(self):
        return [c["name"] for c in self.classes]

    @property
    def colors(self):
        """uint8 (num_labels, 3) RGB lookup table indexed by label id."""
        return np.asarray([c["color"] for c in self.classes], dtype=np.uint8)

    def input_shape(self, batch=1):
        """The model input shape in this contract's layout."""
        if self.layout == "NCHW":
            return (batch, 3, self.height, self.width)
        return (batch, self.height, self.width, 3)

    # -- checks --------------------------------------------------------------------------
    def validate(self):
        if self.height <= 0 or self.width <= 0:
            raise NanosegError("contract input size must be positive, got {}x{}".format(
                self.height, self.width))
        if self.channel_order not in CHANNEL_ORDERS:
            raise NanosegError("contract channel_order must be RGB or BGR, got {!r}".format(
                self.channel_order))
        if self.layout not in LAYOUTS:
            raise NanosegError("contract layout must be NHWC or NCHW, got {!r}".format(
                self.layout))
        if self.activation not in ACTIVATIONS:
            raise NanosegError("contract activation must be sigmoid or softmax, got {!r}".format(
                self.activation))
        if self.interpolation not in INTERPOLATIONS:
            raise NanosegError("contract interpolation {!r} is not one of {}".format(
                self.interpolation, sorted(INTERPOLATIONS)))
        if self.mask_interpolation != "nearest":
            raise NanosegError("contract mask interpolation must be 'nearest' (labels are "
                               "never blended), got {!r}".format(self.mask_interpolation))
        if not isinstance(self.normalization, Normalization):
            raise NanosegError("contract normalization must be a Normalization")
        for entry in self.classes:
            _check_class_entry(entry)
        ids = [c.get("id") for c in self.classes]
        if ids != list(range(len(ids))) or len(ids) < 2:
            raise NanosegError("contract classes must be labels 0..N (background first) with "
                               "at least one class, got ids {}".format(ids))
        if self.activation == "sigmoid" and len(ids) != 2:
            raise NanosegError("a sigmoid contract has exactly one class besides background, "
                               "got {}: use softmax for several".format(self.class_names[1:]))
        if not 0.0 < self.threshold < 1.0:
            raise NanosegError("contract threshold must be in (0, 1), got {}".format(
                self.threshold))

    def check_compatible(self, other, what="artifact"):
        """Raise unless ``other`` feeds and reads the model exactly like this contract.

        Layout and versions may differ (an NCHW ONNX of the same model is fine); anything
        that changes pixels in or labels out may not.
        """
        mine, theirs = self.preprocessing_dict(), other.preprocessing_dict()
        diffs = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        if diffs:
            raise NanosegError(
                "the {}'s contract differs from the bundle's in {} ({} vs {}): it was made "
                "from another model; rebuild it from this bundle".format(
                    what, ", ".join(diffs), [theirs.get(k) for k in diffs],
                    [mine.get(k) for k in diffs]))

    def preprocessing_dict(self):
        """The fields that decide pixels in and labels out."""
        return {
            "height": self.height, "width": self.width, "channel_order": self.channel_order,
            "normalization": self.normalization.to_dict(), "interpolation": self.interpolation,
            "classes": [(c["id"], c["name"]) for c in self.classes],
            "activation": self.activation, "threshold": self.threshold,
            "ignore_id": self.ignore_id,
        }

    # -- serialization -------------------------------------------------------------------
    def to_dict(self):
        return {
            "format": CONTRACT_FORMAT,
            "version": CONTRACT_VERSION,
            "input": {"height": self.height, "width": self.width,
                      "channel_order": self.channel_order, "layout": self.layout,
                      "dtype": "float32"},
            "normalization": self.normalization.to_dict(),
            "interpolation": {"image": self.interpolation, "mask": self.mask_interpolation},
            "classes": self.classes,
            "ignore_id": self.ignore_id,
            "activation": self.activation,
            "threshold": self.threshold,
            "output_channels": self.output_channels,
            "backbone": self.backbone,
            "versions": self.versions,
            "artifacts": self.artifacts,
            "extra": self.extra,
        }

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data, source="contract"):
        if not isinstance(data, dict) or data.get("format") != CONTRACT_FORMAT:
            raise NanosegError("{} is not a nanoseg contract (no \"format\": \"{}\")".format(
                source, CONTRACT_FORMAT))
        if data.get("version") != CONTRACT_VERSION:
            raise NanosegError("{} has contract version {}, this nanoseg reads {}: re-export "
                               "the bundle with this version".format(
                                   source, data.get("version"), CONTRACT_VERSION))
        try:
            inp, interp = data["input"], data["interpolation"]
            return cls(
                inp["height"], inp["width"], inp["channel_order"],
                Normalization.from_dict(data["normalization"]), data["classes"],
                data["activation"], threshold=data["threshold"], ignore_id=data["ignore_id"],
                interpolation=interp["image"], mask_interpolation=interp["mask"],
                layout=inp.get("layout", "NHWC"), backbone=data.get("backbone"),
                versions=data.get("versions"), artifacts=data.get("artifacts"),
                extra=data.get("extra"))
        except KeyError as exc:
            raise NanosegError("{} lacks the field {}: it is damaged or from another "
                               "tool".format(source, exc))
        except (TypeError, ValueError, AttributeError) as exc:
            raise NanosegError("{} has a field of the wrong type ({}): it is damaged or from "
                               "another tool; re-export the bundle".format(source, exc))

    def copy(self, **changes):
        """A new contract with some attributes replaced (e.g. ``layout="NCHW"``)."""
        new = Contract.from_dict(self.to_dict())
        for key, value in changes.items():
            if not hasattr(new, key):
                raise AttributeError(key)
            setattr(new, key, value)
        new.validate()
        return new

    def __eq__(self, other):
        return isinstance(other, Contract) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "Contract({}x{} {} {} {})".format(self.height, self.width, self.channel_order,
                                                 self.normalization.name, self.class_names)


def _check_unique_names(names):
    """A one-line error unless the label names differ without case."""
    seen = {}
    for label, name in enumerate(names):
        if name.lower() in seen:
            raise NanosegError("class name {!r} (label {}) repeats {!r} (label {}): give each "
                               "class its own name".format(name, label, *seen[name.lower()]))
        seen[name.lower()] = (name, label)


def _check_class_entry(entry):
    """Each class needs an integer id, a name and an RGB colour (the overlay draws it)."""
    color = entry.get("color")
    ok_color = isinstance(color, (list, tuple)) and len(color) == 3 and all(
        isinstance(v, numbers.Integral) and 0 <= v <= 255 for v in color)
    if not isinstance(entry.get("id"), numbers.Integral) or not entry.get("name") or not ok_color:
        raise NanosegError("contract class {} needs an integer \"id\", a \"name\" and a "
                           "\"color\" of three 0-255 integers".format(entry))


def load_contract(path):
    """Read a contract JSON file, with a one-line error for a missing or damaged file."""
    if not os.path.isfile(path):
        raise NanosegError("contract not found: {} (every bundle has contract.json; was the "
                           "bundle copied completely?)".format(path))
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise NanosegError("contract {} is not valid JSON: {}".format(path, exc))
    return Contract.from_dict(data, source=path)


def save_contract(contract, path):
    """Write the contract atomically (a reader never sees half a file)."""
    write_text_atomic(path, contract.to_json() + "\n")
