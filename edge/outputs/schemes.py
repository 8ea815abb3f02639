"""The table of output schemes, like jetson-utils' videoOutput::Create: a URI -> a sink.

Each row: a name, the form errors list, the ``--output`` help text, how it recognises a
parsed :class:`~edge.outputs.uri.OutputURI`, the function that opens its sink and, for the
outputs that write files, ``writes(uri) -> (path, is a folder)`` (checked before a run
starts). The rows' tests never overlap; their order is the order of the help text. Adding
an output = one module (``accepts(uri)`` and ``open(uri, options)``) + one row. The older
flags (--save-video, --save-masks, --view-port, the window) are rows of this table too.
"""
from edge import gst
from edge.outputs import display, files, images, masks, rtp, rtsp, viewer
from edge.outputs.uri import OutputURI
from edge.outputs.writer import OUTPUT_FLAG
from nanoseg.errors import NanosegError


class OutputScheme(object):
    """One row: ``accepts(uri) -> bool``, ``open(uri, options) -> Sink`` and ``writes``."""

    __slots__ = ("name", "form", "help", "accepts", "open", "writes", "every_source")

    def __init__(self, name, form, help_text, accepts, opener, writes=None,
                 every_source=False):
        self.every_source = every_source  # one sink shows all --source (viewer, window)
        self.name = name
        self.form = form
        self.help = help_text
        self.accepts = accepts
        self.open = opener
        self.writes = writes


class OutputOptions(object):
    """What the output flags ask of every sink: frame rate, bitrate, the element lookup
    (tests inject one), the flag the user gave (errors name it), the codec of the encoded
    outputs (h264, h265), ``realtime`` (a live source: writers hold frames until the
    next one's capture time, edge/pacing.py), the window's and viewer's ``title`` and the
    viewer's JPEG rate ``view_fps``, and the names of the ``sources`` (the viewer and the
    window show each one)."""

    __slots__ = ("fps", "bitrate_kbps", "exists", "flag", "codec", "realtime", "title",
                 "view_fps", "sources")

    def __init__(self, fps=30.0, bitrate_kbps=gst.DEFAULT_BITRATE_KBPS,
                 exists=gst.element_exists, flag=OUTPUT_FLAG, codec="h264", realtime=False,
                 title="nanoseg", view_fps=15.0, sources=()):
        self.sources = tuple(sources)
        self.title = title
        self.view_fps = view_fps
        self.fps = fps
        self.bitrate_kbps = bitrate_kbps
        self.exists = exists
        self.flag = flag
        if codec not in gst.OUTPUT_CODECS:
            raise NanosegError("--output-codec must be one of {}, got {!r}".format(
                " ".join(gst.OUTPUT_CODECS), codec))
        self.codec = codec
        self.realtime = realtime


OUTPUTS = (
    OutputScheme("h264-file", "FILE.mp4 or FILE.mkv (H.264)",
                 "FILE.mp4|.mkv (H.264/H.265 through GStreamer: the hardware encoder on a "
                 "Jetson)", files.is_h264_file, files.open_h264_file, files.written_path),
    OutputScheme("video-file", "another video file (OpenCV's writer)",
                 "another video file like FILE.avi (OpenCV's software writer)",
                 files.is_video_file, files.open_video_file, files.written_path),
    OutputScheme("images", "out_%05d.jpg or dir/ (image sequence)",
                 "an image sequence out_%05d.jpg or dir/", images.accepts,
                 images.open_images, images.written_path),
    OutputScheme("rtp", "rtp://HOST:PORT", "rtp://HOST:PORT (over UDP)",
                 rtp.accepts, rtp.open_rtp),
    OutputScheme("rtsp", "rtsp://@:PORT/NAME", "rtsp://@:PORT/NAME (an RTSP server here)",
                 rtsp.accepts, rtsp.open_rtsp),
    OutputScheme("viewer", "http://@:PORT/ (browser viewer)",
                 "http://@:PORT/ (the browser viewer)", viewer.accepts, viewer.open_viewer,
                 every_source=True),
    OutputScheme("display", "display://0 (a window)", "display://0 (a window)",
                 display.accepts, display.open_display, every_source=True),
    OutputScheme("masks", "masks://DIR (label-id PNGs)", "masks://DIR (a label-id PNG per "
                 "frame)", masks.accepts, masks.open_masks, masks.written_path),
)
OUTPUT_FORMS = tuple(row.form for row in OUTPUTS)


def output_help():
    """run_camera's ``--output`` help, one phrase per row."""
    phrases = [row.help for row in OUTPUTS]
    return "send the overlay to {} or {}; repeatable".format(", ".join(phrases[:-1]),
                                                            phrases[-1])


def output_scheme(name):
    """The row called ``name``."""
    for row in OUTPUTS:
        if row.name == name:
            return row
    raise KeyError(name)


def written_path(uri):
    """(path, is a folder) that the output ``uri`` writes, or None (a stream, a window)."""
    row = scheme_for(OutputURI(uri))
    return row.writes(OutputURI(uri)) if row.writes is not None else None


def shows_every_source(uri):
    """True for an output that shows every --source at once (the viewer, a window)."""
    return scheme_for(OutputURI(uri)).every_source


def scheme_for(uri):
    """The row for a parsed ``uri``; one-line errors for what no row takes."""
    for row in OUTPUTS:
        if row.accepts(uri):
            return row
    if uri.scheme == "file":
        raise NanosegError("--output {} has no extension: name a .mp4 or .mkv file, end a "
                           "folder with /, or use one of: {}".format(
                               uri.text, "; ".join(OUTPUT_FORMS)))
    raise NanosegError("--output {}: unknown kind; use one of: {}".format(
        uri.text, "; ".join(OUTPUT_FORMS)))


def open_output(uri, fps=30.0, bitrate_kbps=gst.DEFAULT_BITRATE_KBPS,
                exists=gst.element_exists, scheme=None, flag=OUTPUT_FLAG, **options):
    """The sink for one output ``uri``, parsed here once.

    ``scheme`` names the row to use instead of recognising one (``--save-video FILE`` is
    the "video-file" row whatever the extension: OpenCV's writer); ``flag`` is the option
    the user gave, for the errors; ``options``: the rest of :class:`OutputOptions`.
    """
    parsed = OutputURI(uri)
    row = output_scheme(scheme) if scheme is not None else scheme_for(parsed)
    return row.open(parsed, OutputOptions(fps, bitrate_kbps, exists, flag, **options))
