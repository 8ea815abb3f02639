"""The GStreamer writer every H.264 output shares: ``cv2.VideoWriter`` on an appsrc pipeline.

:class:`GstWriterSink` opens at the first frame (its size), fits the frame to what appsrc
takes and releases the writer on close, which sends EOS: only then does mp4mux write the
index that makes a file playable. :func:`require_gstreamer` names what an output is missing.
"""
import logging

import cv2

from edge import gst
from edge.sinks import WriterSink, held_note
from nanoseg import platform_info
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
OUTPUT_FLAG = "--output"


def writer_size(width, height):
    """The frame size a GStreamer writer can take: width a multiple of 4, height even.

    OpenCV hands appsrc BGR rows without padding, while GStreamer expects each row of a BGR
    frame to start on 4 bytes: at a width such as 750 every frame came out as a copy of the
    first (measured with apt's OpenCV 4.6 / GStreamer 1.22). H.264's 4:2:0 needs even sizes.
    Frames are resized by up to 3 pixels instead.
    """
    return width - width % 4, height - height % 2


class GstWriterSink(WriterSink):
    """The overlay into ``cv2.VideoWriter(pipeline, CAP_GSTREAMER)``, opened at frame 1.

    Subclasses give :meth:`pipeline`; like every writer it gets every frame: a file or a
    stream with holes is worse than a slower run. Releasing the writer sends EOS, so muxers
    finish the file and streams end.
    """

    def __init__(self, description, fps=30.0, encoder=None,
                 bitrate_kbps=gst.DEFAULT_BITRATE_KBPS, realtime=False):
        WriterSink.__init__(self, fps, realtime)
        self.description = description
        self.encoder = encoder
        self.bitrate_kbps = int(bitrate_kbps)

    def pipeline(self):
        raise NotImplementedError

    def _open(self, width, height):
        width, height = writer_size(width, height)
        pipeline = self.pipeline()
        LOG.debug("--output %s pipeline: %s", self.description, pipeline)
        writer = cv2.VideoWriter(pipeline, cv2.CAP_GSTREAMER, 0, self.fps, (width, height),
                                 True)
        if not writer.isOpened():
            writer.release()
            raise NanosegError("cannot open --output {}: GStreamer refused the pipeline "
                               "(run with --log-level DEBUG to see it; python3 jetson/"
                               "check_platform.py --check gstreamer names what is "
                               "missing)".format(self.description))
        self._size = (width, height)
        LOG.info("--output %s: %s (%s), %dx%d, %.1f fps%s", self.description,
                 gst.codec_of(self.encoder).upper().replace("H2", "H.2"), self.encoder,
                 width, height, self.fps, ", real time" if self.pacer else "")
        return writer

    def _closed_message(self):
        return "--output {}: {} frames{}".format(self.description, self.frames,
                                                  held_note(self))


def require_gstreamer(uri, elements, exists, codec="h264"):
    """The ``codec`` encoder to use for ``uri``; one-line errors for what is missing."""
    if not platform_info.opencv_has_gstreamer():
        raise NanosegError("--output {} needs an OpenCV built with GStreamer (this cv2 {} is "
                           "not): use JetPack's / apt's python3-opencv, not pip's "
                           "opencv-python".format(uri, cv2.__version__))
    encoder = gst.choose_encoder(codec, exists)
    if encoder is None:
        raise NanosegError("--output {} needs an {} encoder; none of {} is installed: "
                           "{}".format(uri, codec.upper().replace("H2", "H.2"),
                                       " ".join(gst.ENCODERS[codec]),
                                       gst.describe_missing(gst.ENCODERS[codec])))
    missing = gst.missing_elements(elements, exists)
    if missing:
        raise NanosegError("--output {} needs GStreamer elements that are missing: {}".format(
            uri, gst.describe_missing(missing)))
    return encoder
