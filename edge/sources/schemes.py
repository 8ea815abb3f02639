"""The table of source schemes, like jetson-utils' videoSource::Create: a URI -> a reader.

Each row names a scheme, the form ``--source`` help and errors list, how it recognises a
parsed :class:`~edge.sources.uri.SourceURI` and the function that makes its reader; the
rows' tests never overlap, so their order is only the order the forms are listed in.
Adding a scheme = one module (``accepts(uri)`` and ``reader(uri, options)``) + one row.
"""
from edge import gst
from edge.sources import csi, local, rtsp, v4l2
from edge.sources.stream import STALL_TIMEOUT, SourceStream
from edge.sources.uri import SourceURI
from nanoseg.errors import NanosegError


class SourceScheme(object):
    """One row: ``accepts(uri) -> bool`` and ``reader(uri, options) -> Reader``."""

    __slots__ = ("name", "form", "accepts", "reader")

    def __init__(self, name, form, accepts, reader):
        self.name = name
        self.form = form
        self.accepts = accepts
        self.reader = reader


class SourceOptions(object):
    """What the camera and stream flags ask of a source (each scheme reads what it uses)."""

    __slots__ = ("width", "height", "fps", "flip", "latency", "rtsp_codec")

    def __init__(self, width=1280, height=720, fps=30, flip=0, latency=200,
                 rtsp_codec="h264"):
        self.width = width
        self.height = height
        self.fps = fps
        self.flip = flip
        self.latency = latency
        self.rtsp_codec = rtsp_codec


SCHEMES = (
    SourceScheme("csi", "csi://N (Jetson CSI camera N)", csi.accepts, csi.reader),
    SourceScheme("v4l2", "v4l2:///dev/videoN or a device index like 0 (USB camera)",
                 v4l2.accepts, v4l2.reader),
    SourceScheme("rtsp", "rtsp://[user:pass@]host[:port]/path", rtsp.accepts, rtsp.reader),
    SourceScheme("file", "a video file ({})".format(" ".join(local.VIDEO_EXTENSIONS)),
                 local.is_file, local.file_reader),
    SourceScheme("folder", "an image folder", local.is_folder, local.folder_reader),
    SourceScheme("glob", "an image glob like 'frames/*.png'", local.is_glob, local.glob_reader),
)
ACCEPTED_FORMS = tuple(row.form for row in SCHEMES)
RTSP_CODECS = gst.RTSP_CODECS


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


def make_reader(uri, width=1280, height=720, fps=30, flip=0, latency=200, rtsp_codec="h264"):
    """The :class:`~edge.sources.readers.Reader` for ``uri`` (parsed here, once)."""
    parsed = SourceURI(uri)
    options = SourceOptions(width, height, fps, flip, latency, rtsp_codec)
    return scheme_for(parsed).reader(parsed, options)


def open_source(uri, width=1280, height=720, fps=30, flip=0, latency=200, loop=False,
                reconnect_attempts=5, backoff=0.5, stall_timeout=STALL_TIMEOUT,
                rtsp_codec="h264"):
    """A started :class:`SourceStream` for ``uri`` (see ACCEPTED_FORMS).

    ``width``/``height``/``fps``/``flip`` configure cameras (CSI: the GStreamer caps and
    nvvidconv flip-method), ``latency`` (ms) and ``rtsp_codec`` the RTSP stream, ``loop``
    replays a file or folder forever (benchmarks, demos), ``stall_timeout`` (s, live sources,
    0 = off) is how long without a frame counts as a lost camera.
    """
    reader = make_reader(uri, width, height, fps, flip, latency, rtsp_codec)
    stream = SourceStream(reader, loop=loop, reconnect_attempts=reconnect_attempts,
                          backoff=backoff, stall_timeout=stall_timeout)
    return stream.start()
