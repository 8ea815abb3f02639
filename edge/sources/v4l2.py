"""v4l2:///dev/videoN or a bare device index: a USB camera, in the format --input-codec picks.

Where OpenCV has GStreamer (JetPack's), the camera is read by a v4l2src pipeline in the
chosen format (edge.gst_capture.v4l2_pipeline: MJPEG and H.264 decoded in hardware on a
Jetson); the format comes from what the camera offers (v4l2-ctl, edge.sources.v4l2_formats).
Otherwise, or when v4l2-ctl is missing, OpenCV's own V4L2 reader is asked for the format
by its FOURCC (it keeps the camera's default when the camera has none such).
"""
import logging

import cv2

from edge import gst_capture
from edge.sources import v4l2_formats
from edge.sources.readers import CaptureReader
from nanoseg import platform_info
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
OPENCV_FOURCCS = {"mjpeg": "MJPG", "yuyv": "YUYV"}


def accepts(uri):
    return uri.scheme == "v4l2"


def device_path(device):
    """``/dev/videoN`` for an index, the path itself otherwise."""
    return "/dev/video{}".format(device) if isinstance(device, int) else str(device)


def plan(uri, options, list_modes=None):
    """How to read the camera: ("gstreamer", pipeline, codec) or ("opencv", FOURCC, codec)."""
    codec = options.input_codec or "auto"
    if codec not in gst_capture.INPUT_CODECS:
        raise NanosegError("--input-codec must be one of {}, got {!r}".format(
            " ".join(gst_capture.INPUT_CODECS), codec))
    path = device_path(uri.device)
    modes = (list_modes or v4l2_formats.list_modes)(path)
    if modes is not None:
        codec = v4l2_formats.choose_codec(modes, options.width, options.height, options.fps,
                                          codec, device=path)
    if platform_info.opencv_has_gstreamer() and codec != "auto":
        return ("gstreamer", gst_capture.v4l2_pipeline(
            path, codec, options.width, options.height, options.fps,
            jetson=platform_info.is_jetson()), codec)
    if codec == "h264":
        raise NanosegError("--input-codec h264 needs an OpenCV with GStreamer (JetPack's): this "
                           "cv2 {} has none; use mjpeg or yuyv".format(cv2.__version__))
    # unknown formats (no v4l2-ctl): MJPEG is what keeps a USB 2 camera fast at 720p
    return "opencv", OPENCV_FOURCCS.get(codec, "MJPG"), codec


def reader(uri, options, list_modes=None):
    """A live :class:`CaptureReader` for the camera at the size, rate and format asked."""
    how, what, codec = plan(uri, options, list_modes)
    if how == "gstreamer":
        path = device_path(uri.device)
        LOG.info("%s: %s %dx%d at %d fps through GStreamer", path, codec, options.width,
                 options.height, options.fps)
        return CaptureReader(uri.text, _gstreamer_opener(what), live=True,
                             explain=lambda: _no_such_mode(path, codec, options))
    return CaptureReader(uri.text, _opencv_opener(uri.device, what), live=True,
                         size=(options.width, options.height), fps=options.fps)


def _no_such_mode(path, codec, options):
    return ("the camera did not start {} {}x{} at {} fps (see what it offers: v4l2-ctl -d {} "
            "--list-formats-ext; apt v4l-utils)".format(codec, options.width, options.height,
                                                        options.fps, path))


def _gstreamer_opener(pipeline):
    def open_v4l2src():
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    return open_v4l2src


def _opencv_opener(device, fourcc):
    """V4L2 when this OpenCV has it (Linux), else whatever backend OpenCV picks."""
    def open_v4l2():
        api = cv2.CAP_ANY if platform_info.opencv_build_flag("v4l/v4l2") is False \
            else cv2.CAP_V4L2
        capture = cv2.VideoCapture(device, api)
        if capture.isOpened():
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*fourcc))
        return capture
    return open_v4l2
