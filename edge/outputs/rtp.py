"""rtp://HOST:PORT: the overlay as H.264 RTP over UDP to HOST."""
from edge import gst
from edge.outputs.writer import GstWriterSink, require_gstreamer
from nanoseg.errors import NanosegError


class RtpSink(GstWriterSink):
    """H.264 RTP (payload 96) over UDP to ``host:port``; receivers need the caps (docs/camera.md)."""

    def __init__(self, host, port, fps=30.0, encoder=None,
                 bitrate_kbps=gst.DEFAULT_BITRATE_KBPS, description=None, realtime=False):
        super(RtpSink, self).__init__(description or "rtp://{}:{}".format(host, port), fps,
                                      encoder, bitrate_kbps, realtime)
        self.host = host
        self.port = int(port)

    def pipeline(self):
        return gst.rtp_pipeline(self.host, self.port, self.encoder, self.bitrate_kbps)


def accepts(uri):
    return uri.scheme == "rtp"


def open_rtp(uri, options):
    port = uri.port_or_error()
    if not uri.host:
        raise NanosegError("--output {} needs a host, e.g. rtp://192.168.1.10:5000".format(
            uri.text))
    encoder = require_gstreamer(uri.text, gst.writer_elements(options.codec) +
                                gst.rtp_elements(options.codec), options.exists, options.codec)
    return RtpSink(uri.host, port, options.fps, encoder, options.bitrate_kbps,
                   realtime=options.realtime)
