"""--flip for every source but CSI (which flips on the GPU, in nvvidconv): one OpenCV call.

The methods are nvvidconv's flip-method numbers, so ``--flip`` means the same everywhere:
0 none, 1 rotate 90 counterclockwise, 2 rotate 180, 3 rotate 90 clockwise, 4 mirror
(horizontal flip), 5 upper-right diagonal, 6 vertical flip, 7 upper-left diagonal (a
transpose). 1, 3, 5 and 7 give height x width frames.
"""
import cv2

from edge.gst_capture import FLIP_METHODS
from edge.sources.readers import Reader
from nanoseg.errors import NanosegError

_ONE_CALL = {
    1: lambda image: cv2.rotate(image, cv2.ROTATE_90_COUNTERCLOCKWISE),
    2: lambda image: cv2.rotate(image, cv2.ROTATE_180),
    3: lambda image: cv2.rotate(image, cv2.ROTATE_90_CLOCKWISE),
    4: lambda image: cv2.flip(image, 1),
    # across the upper-right diagonal = a transpose turned by 180 degrees
    5: lambda image: cv2.flip(cv2.transpose(image), -1),
    6: lambda image: cv2.flip(image, 0),
    7: cv2.transpose,
}


def check_flip(method):
    method = int(method)
    if method not in FLIP_METHODS:
        raise NanosegError("--flip must be a flip-method 0..7 (as nvvidconv numbers them), "
                           "got {}".format(method))
    return method


def flip_image(image, method):
    """``image`` flipped or rotated by flip-method ``method`` (0: the image itself)."""
    method = check_flip(method)
    return image if method == 0 else _ONE_CALL[method](image)


class FlippedReader(Reader):
    """Another reader's frames, flipped; everything else is that reader's."""

    def __init__(self, reader, method):
        self.inner = reader
        self.method = check_flip(method)
        self._flip = _ONE_CALL[self.method]

    @property
    def live(self):
        return self.inner.live

    @property
    def description(self):
        return self.inner.description

    @property
    def fps(self):
        return self.inner.fps

    def open(self):
        self.inner.open()

    def read(self):
        item = self.inner.read()
        if item is None:
            return None
        name, image = item
        return name, self._flip(image)

    def detach(self):
        return self.inner.detach()

    def close(self):
        self.inner.close()
