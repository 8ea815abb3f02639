"""The table of source schemes, like jetson-utils' videoSource::Create: a URI -> a reader.

Each row names a scheme, the form ``--source`` help and errors list, how it recognises a
parsed :class:`~edge.sources.uri.SourceURI` and the function that makes its reader; the
rows' tests never overlap, so their order is only the order the forms are listed in.
Adding a scheme = one module (``accepts(uri)`` and ``reader(uri, options)``) + one row.
"""
from edge import gst_capture
from edge.sources import csi, local, rtp, rtsp, v4l2
from edge.sources.flip import FlippedReader, check_flip
from edge.sources.stream import STALL_TIMEOUT, SourceStream
from edge.sources.uri import SourceURI
from nanoseg.errors import NanosegError


class SourceScheme(object):
    """One row: ``accepts(uri) -> bool`` and ``reader(uri, options) -> Reader``;
    ``flips``: the reader applies ``--flip`` itself (CSI, on the GPU), else it is one
    OpenCV call on each frame (edge/sources/flip.py)."""

    __slots__ = ("name", "form", "accepts", "reader", "flips")

    def __init__(self, name, form, accepts, reader, flips=False):
        self.name = name
        self.form = form
        self.accepts = accepts
        self.reader = reader
        self.flips = flips


class SourceOptions(object):
    """What the camera and stream flags ask of a source (each scheme reads what it uses)."""

    __slots__ = ("width", "height", "fps", "flip", "latency", "rtsp_codec", "sensor_mode",
                 "input_codec", "rtsp_transport")

    def __init__(self, width=1280, height=720, fps=30, flip=0, latency=200,
                 rtsp_codec="h264", sensor_mode=None, input_codec="auto",
                 rtsp_transport="auto"):
        self.width = width
        self.height = height
        self.fps = fps
        self.flip = flip
        self.latency = latency
        self.rtsp_codec = rtsp_codec
        self.sensor_mode = sensor_mode  # CSI: "WxH[@FPS]", captured then scaled
        self.input_codec = input_codec  # V4L2: auto, mjpeg, yuyv, h264
        self.rtsp_transport = rtsp_transport  # RTSP: auto, tcp, udp


SCHEMES = (
    SourceScheme("csi", "csi://N (Jetson CSI camera N)", csi.accepts, csi.reader, flips=True),
    SourceScheme("v4l2", "v4l2:///dev/videoN or a device index like 0 (USB camera)",
                 v4l2.accepts, v4l2.reader),
    SourceScheme("rtsp", "rtsp://[user:pass@]host[:port]/path", rtsp.accepts, rtsp.reader),
    SourceScheme("rtp", "rtp://@:PORT (H.264/H.265 RTP over UDP)", rtp.accepts, rtp.reader),
    SourceScheme("file", "a video file ({})".format(" ".join(local.VIDEO_EXTENSIONS)),
                 local.is_file, local.file_reader),
    SourceScheme("folder", "an image folder", local.is_folder, local.folder_reader),
    SourceScheme("glob", "an image glob like 'frames/*.png'", local.is_glob, local.glob_reader),
)
ACCEPTED_FORMS = tuple(row.form for row in SCHEMES)
RTSP_CODECS = gst_capture.RTSP_CODECS
RTSP_TRANSPORTS = gst_capture.RTSP_TRANSPORTS
INPUT_CODECS = gst_capture.INPUT_CODECS


def scheme_for(uri, flag="--source"):
    """The row of :data:`SCHEMES` for a parsed ``uri``; one-line error listing the forms
    (naming ``flag``, the option the URI came from)."""
    for row in SCHEMES:
        if row.accepts(uri):
            return row
    if local.is_missing_file(uri):
        raise NanosegError("file not found: {}".format(uri.path))
    raise NanosegError("unknown {} {!r}: use one of {}".format(
        flag, uri.shown, "; ".join(ACCEPTED_FORMS)))


def make_reader(uri, width=1280, height=720, fps=30, flip=0, latency=200, rtsp_codec="h264",
                **options):
    """The :class:`~edge.sources.readers.Reader` for ``uri`` (parsed here, once);
    ``options``: the rest of :class:`SourceOptions` (sensor_mode, input_codec,
    rtsp_transport)."""
    parsed = SourceURI(uri)
    options = SourceOptions(width, height, fps, check_flip(flip), latency, rtsp_codec,
                            **options)
    row = scheme_for(parsed)
    reader = row.reader(parsed, options)
    if options.flip and not row.flips:
        reader = FlippedReader(reader, options.flip)
    return reader


def open_source(uri, width=1280, height=720, fps=30, flip=0, latency=200, loop=False,
                reconnect_attempts=5, backoff=0.5, stall_timeout=STALL_TIMEOUT,
                rtsp_codec="h264", **options):
    """A started :class:`SourceStream` for ``uri`` (see ACCEPTED_FORMS).

    ``width``/``height``/``fps`` configure cameras (CSI: the GStreamer caps), ``flip`` is a
    flip-method for every source, ``latency`` (ms) and ``rtsp_codec`` the RTSP and RTP
    streams, ``loop`` replays a file or folder (N more times; -1 or True: forever),
    ``stall_timeout`` (s, live sources, 0 = off) is how long without a frame counts as a
    lost camera; ``options``: sensor_mode (CSI), input_codec (V4L2), rtsp_transport.
    """
    reader = make_reader(uri, width, height, fps, flip, latency, rtsp_codec, **options)
    stream = SourceStream(reader, loop=loop, reconnect_attempts=reconnect_attempts,
                          backoff=backoff, stall_timeout=stall_timeout)
    return stream.start()
