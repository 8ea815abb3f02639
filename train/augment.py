"""Training augmentation: albumentations on the uint8 image and its label mask together.

Augmentation runs before the contract's resize (train/pipeline.py then calls
``nanoseg.preprocess.preprocess_image``), so it never changes what validation or the edge sees.
Geometric transforms interpolate masks with nearest neighbour and fill the border they
expose with the ignore id: padding is "unknown", not background, and must not teach the
model that image borders are background.

Import after ``train.keras_env.prepare()`` (albumentations phones home on import otherwise).
"""
import random
import threading

import cv2
import numpy as np

from nanoseg.contract import IGNORE_ID
from nanoseg.preprocess import check_image
from nanoseg.errors import NanosegError


def _default_transforms(ignore_id):
    """The default recipe: flips, a mild affine, photometric jitter, a little blur or noise.

    Vertical flips and large rotations are left out: camera frames have an up, and nails,
    roads and people do not appear upside down.
    """
    import albumentations as A
    return [
        A.HorizontalFlip(p=0.5),
        A.Affine(scale=(0.85, 1.15), translate_percent=(-0.0625, 0.0625), rotate=(-15, 15),
                 interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST,
                 border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=ignore_id, p=0.7),
        A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        A.HueSaturationValue(hue_shift_limit=10, sat_shift_limit=20, val_shift_limit=10,
                             p=0.3),
        A.OneOf([
            A.GaussianBlur(blur_limit=(3, 5), p=1.0),
            A.GaussNoise(std_range=(0.02, 0.08), p=1.0),
        ], p=0.3),
    ]


RECIPES = {"default": _default_transforms}
AUGMENTATION_KINDS = ("none",) + tuple(sorted(RECIPES))


def _check_kind(kind):
    """Raise a one-line error for an augmentation name that does not exist."""
    if kind not in AUGMENTATION_KINDS:
        raise NanosegError("unknown augmentation {!r} (--augment): use one of {}".format(
            kind, ", ".join(AUGMENTATION_KINDS)))


def _reseed(compose, seed):
    """Give every transform of ``compose`` one shared random stream started at ``seed``.

    Not ``Compose.set_random_seed``: albumentations 2.0.8 hands the *same* seed to each
    child, so every transform's first draw is the same number and, reseeded per sample,
    they all fire together or not at all (measured: 3 of 8 seeds left the image untouched).
    """
    seed = int(seed) % (2 ** 32)
    compose.set_random_state(np.random.default_rng(seed), random.Random(seed))


class Augmentation(object):
    """A callable ``(image, mask, seed=None) -> (image, mask)`` safe to call from threads.

    tf.data calls it from several threads at once, so each thread gets its own
    albumentations pipeline (their random state must not be shared). With a per-sample
    ``seed`` the result depends only on that seed, whichever thread runs it; without one,
    the thread's own stream (seeded from ``seed`` at construction) is used.
    """

    def __init__(self, kind="default", seed=None, ignore_id=IGNORE_ID):
        if kind not in RECIPES:
            raise NanosegError("unknown augmentation recipe {!r}: use one of {}, or "
                               "build_augmentation('none') for none".format(
                                   kind, ", ".join(sorted(RECIPES))))
        self.kind = kind
        self.seed = seed
        self.ignore_id = int(ignore_id)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._threads = 0

    def _compose(self):
        """This thread's albumentations Compose, built on first use."""
        compose = getattr(self._local, "compose", None)
        if compose is None:
            import albumentations as A
            with self._lock:
                ordinal = self._threads
                self._threads += 1
            compose = A.Compose(RECIPES[self.kind](self.ignore_id))
            if self.seed is not None:
                _reseed(compose, int(self.seed) + 1000003 * ordinal)
            self._local.compose = compose
        return compose

    def __call__(self, image, mask, seed=None):
        """Augment ``image`` (uint8 HxWx3) and ``mask`` (uint8 HxW) with the same geometry."""
        check_image(image, "augmentation input image")
        if mask.shape != image.shape[:2]:
            raise NanosegError("augmentation: mask shape {} does not match image shape {}"
                               .format(mask.shape, image.shape[:2]))
        compose = self._compose()
        if seed is not None:
            _reseed(compose, seed)
        out = compose(image=image, mask=mask)
        return np.ascontiguousarray(out["image"]), np.ascontiguousarray(out["mask"])

    def __repr__(self):
        return "Augmentation(kind={!r}, seed={!r})".format(self.kind, self.seed)


def build_augmentation(kind="default", seed=None, ignore_id=IGNORE_ID):
    """The training augmentation by name; ``"none"`` returns None (nothing to apply)."""
    _check_kind(kind)
    if kind == "none":
        return None
    return Augmentation(kind, seed=seed, ignore_id=ignore_id)
