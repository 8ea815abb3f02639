"""Frame sources behind one abstraction: CSI and USB cameras, RTSP, RTP, video files, images.

:func:`open_source` parses a URI once (:class:`SourceURI`), finds its row in the table of
schemes (:data:`SCHEMES`: csi://, v4l2:// or a device index, rtsp://, rtp://, a file, a
folder, a glob) and returns a started :class:`SourceStream`: that row's reader (how to get one BGR
frame) driven by a capture thread. Live sources keep only the latest frame and reconnect
with back-off; files and folders deliver every frame in order. The GStreamer pipeline
strings are edge.gst_capture's, the OpenCV build facts nanoseg.platform_info's.
Python 3.6 + numpy + JetPack's OpenCV 4.1.1 only.
"""
from edge.sources.readers import (IMAGE_EXTENSIONS, CaptureReader, ImageListReader,
                                  Reader)
from edge.sources.schemes import (ACCEPTED_FORMS, INPUT_CODECS, RTSP_CODECS, RTSP_TRANSPORTS,
                                  SCHEMES, SourceOptions, SourceScheme, make_reader,
                                  open_source, scheme_for)
from edge.sources.capture_thread import Frame
from edge.sources.stream import STALL_TIMEOUT, SourceStream
from edge.sources.uri import SourceURI, redact_uri, split_credentials

__all__ = ["ACCEPTED_FORMS", "CaptureReader", "Frame", "IMAGE_EXTENSIONS", "INPUT_CODECS",
           "ImageListReader", "RTSP_CODECS", "RTSP_TRANSPORTS", "Reader", "SCHEMES",
           "STALL_TIMEOUT", "SourceOptions", "SourceScheme",
           "SourceStream", "SourceURI", "make_reader", "open_source", "redact_uri",
           "scheme_for", "split_credentials"]
