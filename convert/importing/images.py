"""Golden images for an imported model: an image folder, with or without masks.

A bundle made by train/train.py finds its golden images through its dataset recipe; an
imported one records the ``--images`` folder (``contract.extra["imported"]["images"]``),
which convert/export_onnx.py reads when the bundle records no dataset.
"""
import numpy as np

from nanoseg.datasets.masks import read_image_rgb
from nanoseg.datasets.pairing import list_by_key
from nanoseg.errors import NanosegError

IMPORTED = "imported"   # contract.extra key of what import_model recorded


def folder_images(folder, count):
    """[(name, RGB uint8)]: ``count`` images spread evenly over the folder, sorted by name."""
    found = list_by_key(folder)
    if not found:
        raise NanosegError("no image files in {}: pass an --images folder of pictures like "
                           "the camera's".format(folder))
    keys = sorted(found)
    picks = sorted(set(np.linspace(0, len(keys) - 1, min(count, len(keys)))
                       .round().astype(int).tolist()))
    return [(keys[i], read_image_rgb(found[keys[i]])) for i in picks]


def imported_golden_images(contract, count):
    """The recorded --images folder's golden images, or None for a bundle without one."""
    folder = contract.extra.get(IMPORTED, {}).get("images")
    if not folder:
        return None
    return folder_images(folder, count)
