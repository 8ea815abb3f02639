"""Input normalization: ``y = (x * scale - mean) / std`` per channel, float32, on uint8.

The named schemes are one table, :data:`NORMALIZATIONS` (name -> factory); ``backbone``
(what segmentation_models' ``get_preprocessing`` does) is resolved at training time by
train/backbones.py into the same three numbers, so the edge only ever reads numbers.
numpy + OpenCV, Python 3.6.
"""
import cv2
import numpy as np

from nanoseg.errors import NanosegError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Normalization(object):
    """``y = (x * scale - mean) / std`` per channel, in float32, on uint8 input.

    Every scheme users pick reduces to these numbers:
    ``scale``    x/255 (the nail tutorial);
    ``imagenet`` (x/255 - mean) / std with ImageNet's mean and std;
    ``backbone`` what segmentation_models' ``get_preprocessing(backbone)`` does, resolved at
    training time into the same three numbers (plus the channel order, for caffe-style BGR).
    """

    def __init__(self, name, scale, mean, std):
        self.name = str(name)
        self.scale = float(scale)
        self.mean = [float(v) for v in _three(mean, "normalization mean")]
        self.std = [float(v) for v in _three(std, "normalization std")]
        if any(s == 0 for s in self.std):
            raise NanosegError("normalization std has a zero: {}".format(self.std))
        self._mean32 = np.asarray(self.mean, dtype=np.float32)
        self._std32 = np.asarray(self.std, dtype=np.float32)
        self._scale32 = np.float32(self.scale)
        values = np.arange(256, dtype=np.uint8).reshape(1, 256, 1).repeat(3, axis=2)
        self._lut = np.ascontiguousarray(self.formula(values))

    @classmethod
    def named(cls, name):
        """A scheme of :data:`NORMALIZATIONS` that needs no backbone knowledge."""
        if name not in NORMALIZATIONS:
            raise NanosegError("unknown normalization {!r}: use one of {}".format(
                name, ", ".join(NORMALIZATION_CHOICES)))
        return NORMALIZATIONS[name]()

    def apply(self, image, out=None):
        """uint8 HxWx3 -> float32 HxWx3. The one place these numbers touch pixels.

        One ``cv2.LUT`` pass through :meth:`table` (bit-identical to the float32
        formula, see there) instead of three broadcast passes; ``out`` (float32 HxWx3,
        contiguous), when given, receives the result without a new allocation, e.g. a
        backend's input buffer.
        """
        if out is None:
            return cv2.LUT(image, self._lut)
        return cv2.LUT(image, self._lut, dst=out)

    def table(self):
        """(1, 256, 3) float32: ``(x * scale - mean) / std`` for every uint8 x per channel.

        Computed with exactly the float32 operations (and their rounding) of the formula,
        so looking a pixel up gives the same bits as computing it.
        """
        return self._lut.copy()

    def formula(self, image):
        """The float32 formula itself, three passes: the reference :meth:`apply` must match."""
        x = image.astype(np.float32)
        x *= self._scale32
        x -= self._mean32
        x /= self._std32
        return x

    def to_dict(self):
        return {"name": self.name, "scale": self.scale, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, data):
        try:
            return cls(data["name"], data["scale"], data["mean"], data["std"])
        except (KeyError, TypeError) as exc:
            raise NanosegError("contract normalization is incomplete ({}): expected name, "
                               "scale, mean, std".format(exc))

    def __eq__(self, other):
        return isinstance(other, Normalization) and self.to_dict() == other.to_dict()

    def __repr__(self):
        return "Normalization({})".format(self.to_dict())


def _three(values, what):
    values = list(values)
    if len(values) == 1:
        values = values * 3
    if len(values) != 3:
        raise NanosegError("{} needs 1 or 3 numbers, got {}".format(what, values))
    return values


# One row per named scheme: name -> a Normalization. A new scheme is one row here (and, if it
# needs the encoder's name, a branch in train/backbones.py like ``backbone``).
NORMALIZATIONS = {
    "scale": lambda: Normalization("scale", 1.0 / 255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "imagenet": lambda: Normalization("imagenet", 1.0 / 255.0, IMAGENET_MEAN, IMAGENET_STD),
}
BACKBONE = "backbone"   # resolved from the encoder's name at training time (train/backbones.py)
NORMALIZATION_CHOICES = tuple(sorted(NORMALIZATIONS)) + (BACKBONE,)   # what --normalization accepts
