"""csi://N: a Jetson CSI camera through nvarguscamerasrc (needs an OpenCV with GStreamer)."""
import cv2

from edge import gst
from edge.sources.readers import CaptureReader
from nanoseg import platform_info
from nanoseg.errors import NanosegError


def accepts(uri):
    return uri.scheme == "csi"


def reader(uri, options):
    """A live :class:`CaptureReader` on :func:`edge.gst.csi_pipeline` for sensor N."""
    if uri.device is None:
        raise NanosegError("CSI source {!r} needs a sensor number, like csi://0".format(uri.text))
    pipeline = gst.csi_pipeline(uri.device, options.width, options.height, options.fps,
                                options.flip)
    return CaptureReader(uri.text, _opener(uri.text, pipeline), live=True)


def no_gstreamer_message(description, what):
    return ("cannot open {}: this OpenCV {} was built without GStreamer (cv2.getBuildInformation"
            "() says GStreamer: NO), which {} needs: use JetPack's OpenCV, not a pip "
            "opencv-python (python3 jetson/check_platform.py --check gstreamer)".format(
                description, cv2.__version__, what))


def _opener(description, pipeline):
    """The CSI pipeline through GStreamer, or a message saying this OpenCV has none."""
    def open_csi():
        if not platform_info.opencv_has_gstreamer():
            raise NanosegError(no_gstreamer_message(description, "a CSI camera"))
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    return open_csi
