"""csi://N: a Jetson CSI camera through nvarguscamerasrc (needs an OpenCV with GStreamer)."""
import cv2

from edge import gst_capture
from edge.sources.readers import CaptureReader
from nanoseg import platform_info
from nanoseg.errors import NanosegError


def accepts(uri):
    return uri.scheme == "csi"


def reader(uri, options):
    """A live :class:`CaptureReader` on :func:`edge.gst_capture.csi_pipeline` for sensor N
    (flipped and scaled by nvvidconv on the GPU)."""
    if uri.device is None:
        raise NanosegError("CSI source {!r} needs a sensor number, like csi://0".format(uri.text))
    mode = gst_capture.parse_sensor_mode(options.sensor_mode) if options.sensor_mode else None
    pipeline = gst_capture.csi_pipeline(uri.device, options.width, options.height, options.fps,
                                        options.flip, sensor_mode=mode)
    return CaptureReader(uri.text, _opener(uri.text, pipeline), live=True,
                         explain=lambda: open_failure(uri.device, options.sensor_mode))


def open_failure(sensor, sensor_mode=None):
    """Why a CSI open fails, as far as nanoseg can tell, and the fixes, in one line.

    "Failed to create CaptureSession" after a crash or a killed run: nvargus-daemon still
    holds the sensor until it is restarted.
    """
    mode = "the sensor mode {}".format(sensor_mode) if sensor_mode else \
        "the --width/--height/--fps sensor mode"
    return ("nvarguscamerasrc could not open sensor {}: if a run crashed or was killed, "
            "restart the camera daemon (sudo systemctl restart nvargus-daemon); else check "
            "the ribbon cable and that the camera offers {} (--sensor-mode)".format(
                sensor, mode))


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
