"""Video files: ``FILE.mp4``/``.mkv`` as H.264 through GStreamer (hardware on a Jetson),
any other video file (and the H.264 ones without GStreamer) through OpenCV's own writer."""
import logging
import os

from edge import gst
from edge.outputs.images import IMAGE_EXTENSIONS
from edge.outputs.writer import OUTPUT_FLAG, GstWriterSink, require_gstreamer
from edge.sinks import VideoSink, check_output_folder
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)


class H264FileSink(GstWriterSink):
    """An H.264 .mp4 / .mkv through GStreamer's encoder (nvv4l2h264enc on a Jetson)."""

    def __init__(self, path, fps=30.0, encoder=None, bitrate_kbps=gst.DEFAULT_BITRATE_KBPS,
                 realtime=False):
        super(H264FileSink, self).__init__(path, fps, encoder, bitrate_kbps, realtime)
        self.path = self.recording = path
        self.flag = OUTPUT_FLAG
        self.container = os.path.splitext(path)[1].lower()
        check_output_folder(path, OUTPUT_FLAG)

    def pipeline(self):
        return gst.file_pipeline(os.path.abspath(self.path), self.encoder, self.container,
                                 self.bitrate_kbps)


def is_h264_file(uri):
    return uri.scheme == "file" and uri.extension in gst.CONTAINER_MUXERS


def is_video_file(uri):
    return uri.scheme == "file" and bool(uri.extension) and not is_h264_file(uri) and \
        uri.extension not in IMAGE_EXTENSIONS


def written_path(uri):
    return (uri.path, False)


def open_h264_file(uri, options):
    """H.264 through GStreamer when it can; OpenCV's writer otherwise (a warning says why)."""
    try:
        encoder = require_gstreamer(uri.text, gst.writer_elements(options.codec) + (
            gst.CONTAINER_MUXERS[uri.extension], "filesink"), options.exists, options.codec)
    except NanosegError as exc:
        LOG.warning("%s; writing it with OpenCV's software writer instead", exc)
        return open_video_file(uri, options)
    return H264FileSink(uri.path, options.fps, encoder, options.bitrate_kbps,
                        options.realtime)


def open_video_file(uri, options):
    """OpenCV's software writer; its errors name the flag the user gave."""
    return VideoSink(uri.path, options.fps, flag=options.flag, realtime=options.realtime)
