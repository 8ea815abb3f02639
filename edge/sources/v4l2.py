"""v4l2:///dev/videoN or a bare device index: a USB camera."""
import cv2

from edge.sources.readers import CaptureReader
from nanoseg import platform_info


def accepts(uri):
    return uri.scheme == "v4l2"


def reader(uri, options):
    """A live :class:`CaptureReader` asking the camera for the size and rate of ``options``."""
    return CaptureReader(uri.text, _opener(uri.device), live=True,
                         size=(options.width, options.height), fps=options.fps)


def _opener(device):
    """V4L2 when this OpenCV has it (Linux), else whatever backend OpenCV picks."""
    def open_v4l2():
        api = cv2.CAP_ANY if platform_info.opencv_build_flag("v4l/v4l2") is False \
            else cv2.CAP_V4L2
        return cv2.VideoCapture(device, api)
    return open_v4l2
