"""rtsp://[user:pass@]host[:port]/path (and rtsps://): an IP camera's stream."""
import logging

import cv2

from edge import gst_capture
from edge.sources import rtsp_probe
from edge.sources.readers import CaptureReader
from nanoseg import platform_info
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)


def accepts(uri):
    return uri.scheme in ("rtsp", "rtsps")


def reader(uri, options):
    """RTSP through GStreamer when OpenCV has it (latency, codec honoured), else FFmpeg.

    Every open first asks the camera (rtsp_probe.refusal): no server, a rejected password or
    a wrong path fail in one line saying so and never reach OpenCV, whose GStreamer backend
    can wait forever on a refused stream; any other answer goes on to OpenCV (the probe's
    words explain a failure there). Never CAP_ANY: OpenCV 4.1's image-sequence backend
    prints the name it was given, and this one holds the password. FFmpeg options
    (OPENCV_FFMPEG_CAPTURE_OPTIONS, e.g. TCP transport) come from the environment, which
    the CLI sets: a library does not touch os.environ.
    """
    safe = uri.shown

    def explain():
        return rtsp_probe.explain_failure(uri.location, uri.user, uri.password, shown=safe)

    def check_camera():
        """Ask the camera first: OpenCV may hang forever opening a stream it refuses."""
        reason = rtsp_probe.refusal(uri.location, uri.user, uri.password, shown=safe)
        if reason is not None:
            raise NanosegError("cannot open {}: {}".format(safe, reason))
    if platform_info.opencv_has_gstreamer():
        pipeline = gst_capture.rtsp_pipeline(uri.location, options.latency,
                                             jetson=platform_info.is_jetson(),
                                             codec=options.rtsp_codec, user=uri.user,
                                             password=uri.password,
                                             transport=options.rtsp_transport)

        def open_gstreamer():
            check_camera()
            return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
        return CaptureReader(safe, open_gstreamer, live=True, explain=explain)
    # the same option checks on every build
    gst_capture.rtsp_pipeline(uri.location, options.latency, codec=options.rtsp_codec,
                              transport=options.rtsp_transport)

    def open_ffmpeg():
        if platform_info.opencv_build_flag("FFMPEG") is False:
            raise NanosegError("cannot open {}: this OpenCV {} has neither GStreamer nor FFmpeg"
                               " for RTSP: use JetPack's OpenCV on the Jetson".format(
                                   safe, cv2.__version__))
        check_camera()
        return cv2.VideoCapture(uri.text, cv2.CAP_FFMPEG)
    LOG.info("OpenCV has no GStreamer: %s through FFmpeg (--latency and --rtsp-codec do not "
             "apply; --rtsp-transport sets OPENCV_FFMPEG_CAPTURE_OPTIONS)", safe)
    return CaptureReader(safe, open_ffmpeg, live=True, explain=explain)
