"""rtp://@:PORT (any interface) or rtp://ADDRESS:PORT: H.264/H.265 RTP over UDP.

What nanoseg's own ``--output rtp://`` (or jetson-utils' videoOutput) sends: payload 96,
the codec per ``--rtsp-codec``. udpsrc cannot learn the caps from the stream, so they are
given; ADDRESS is a local address or a multicast group to join. Needs an OpenCV with
GStreamer.
"""
import cv2

from edge import gst_capture
from edge.sources.csi import no_gstreamer_message
from edge.sources.readers import CaptureReader
from nanoseg import platform_info
from nanoseg.errors import NanosegError

ANY_ADDRESS = ("", "@", "0.0.0.0")


def accepts(uri):
    return uri.scheme == "rtp"


def address_and_port(text):
    """(address or None for every interface, port) of ``rtp://[@|ADDRESS]:PORT``."""
    rest = str(text).partition("://")[2]
    host = rest.split("/")[0]
    address, _, port = host.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise NanosegError("--source {} needs a UDP port 1-65535: rtp://@:5000 listens on "
                           "every interface".format(text))
    address = address.lstrip("@")
    return (None if address in ANY_ADDRESS else address), int(port)


def reader(uri, options):
    address, port = address_and_port(uri.text)
    pipeline = gst_capture.rtp_input_pipeline(port, address, options.latency,
                                              jetson=platform_info.is_jetson(),
                                              codec=options.rtsp_codec)

    def open_rtp():
        if not platform_info.opencv_has_gstreamer():
            raise NanosegError(no_gstreamer_message(uri.text, "an RTP stream"))
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)
    return CaptureReader(uri.text, open_rtp, live=True)
