"""rtsp://@:PORT/NAME: an RTSP server on this device (``@``: every interface).

OpenCV cannot serve RTSP, so the writer sends H.264 RTP to a free local UDP port and
gst-rtsp-server (python3-gi) serves that port's packets, re-payloaded, not re-encoded.
"""
import logging
import socket
import threading

from edge import gst
from edge.outputs.rtp import RtpSink
from edge.outputs.writer import require_gstreamer
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
RTSP_DEFAULT_PORT = 8554
RTSP_APT_PACKAGES = gst.RTSP_APT_PACKAGES
SERVER_STOP_TIMEOUT = 5.0


class RtspServerSink(RtpSink):
    """An RTSP server at ``rtsp://host:port/name`` streaming the overlay as H.264.

    The server starts at once (clients may connect before the first frame); the writer sends
    RTP to a free UDP port on 127.0.0.1 that the server's media reads.
    """

    def __init__(self, host, port, name, fps=30.0, encoder=None,
                 bitrate_kbps=gst.DEFAULT_BITRATE_KBPS, realtime=False):
        rtp_port = free_port()
        super(RtspServerSink, self).__init__(
            "127.0.0.1", rtp_port, fps, encoder, bitrate_kbps,
            description="rtsp://{}:{}/{}".format(host, port, name), realtime=realtime)
        self.server = RtspServer(host, port, name, rtp_port,
                                 gst.codec_of(encoder)).start()

    def close(self):
        try:
            super(RtspServerSink, self).close()
        finally:
            self.server.stop()


def free_port(host="127.0.0.1", kind=socket.SOCK_DGRAM):
    """A port nobody uses right now on ``host``: UDP (the writer -> server hop) by default,
    ``kind=socket.SOCK_STREAM`` for a TCP one."""
    probe = socket.socket(socket.AF_INET, kind)
    try:
        probe.bind((host, 0))
        return probe.getsockname()[1]
    finally:
        probe.close()


def _import_rtsp_server():
    """(GLib, GstRtspServer) from python3-gi, or a one-line error naming the packages."""
    try:
        _, glib, rtsp = gst.import_gst("GLib", "GstRtspServer")
    except (ImportError, ValueError) as exc:
        raise NanosegError("--output rtsp:// needs GStreamer's RTSP server for Python ({}): "
                           "sudo apt-get install {}".format(
                               str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                               RTSP_APT_PACKAGES))
    return glib, rtsp


class RtspServer(object):
    """gst-rtsp-server on its own GLib main context and thread, serving one mount.

    The mount's media is shared by every client and reads H.264 RTP from
    ``127.0.0.1:rtp_port``; :meth:`stop` disconnects the clients and frees the port.
    """

    def __init__(self, host, port, name, rtp_port, codec="h264"):
        self.codec = codec
        self.host = host
        self.port = int(port)
        self.mount = "/" + name.strip("/")
        self.rtp_port = int(rtp_port)
        self._glib, self._rtsp = _import_rtsp_server()
        self._context = self._glib.MainContext.new()
        self._loop = self._glib.MainLoop.new(self._context, False)
        self._server = None
        self._source_id = 0
        self._thread = None

    @property
    def url(self):
        shown = "<this device>" if self.host == "0.0.0.0" else self.host
        return "rtsp://{}:{}{}".format(shown, self.port, self.mount)

    def start(self):
        server = self._rtsp.RTSPServer()
        server.set_address(self.host)
        server.set_service(str(self.port))
        factory = self._rtsp.RTSPMediaFactory()
        factory.set_launch(gst.rtsp_media_launch(self.rtp_port, codec=self.codec))
        factory.set_shared(True)
        server.get_mount_points().add_factory(self.mount, factory)
        self._source_id = server.attach(self._context)
        if not self._source_id:
            raise NanosegError("cannot serve --output rtsp://{}:{}{}: port {} is in use or "
                               "the address is not this machine's: choose another port".format(
                                   self.host, self.port, self.mount, self.port))
        self._server = server
        self._thread = threading.Thread(target=self._loop.run, name="rtsp-server",
                                        daemon=True)
        self._thread.start()
        LOG.info("RTSP server: %s", self.url)
        return self

    def stop(self):
        """Disconnect the clients, close the listening socket, end the thread (bounded)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        remove = self._rtsp.RTSPFilterResult.REMOVE
        server.client_filter(lambda _server, _client, *_: remove)
        source = self._context.find_source_by_id(self._source_id)
        if source is not None:
            source.destroy()
        self._loop.quit()
        self._thread.join(SERVER_STOP_TIMEOUT)
        if self._thread.is_alive():
            LOG.warning("the RTSP server thread did not end within %.0f s",
                        SERVER_STOP_TIMEOUT)
        else:
            LOG.info("RTSP server %s stopped", self.url)


def accepts(uri):
    return uri.scheme == "rtsp"


def open_rtsp(uri, options):
    if not uri.name:
        raise NanosegError("--output {} needs a stream name: rtsp://@:PORT/NAME".format(
            uri.text))
    port = uri.port_or_error(RTSP_DEFAULT_PORT)
    codec = options.codec
    encoder = require_gstreamer(uri.text, gst.writer_elements(codec) + gst.rtp_elements(codec)
                                + gst.rtsp_server_elements(codec), options.exists, codec)
    return RtspServerSink(uri.host or "0.0.0.0", port, uri.name, options.fps, encoder,
                          options.bitrate_kbps, realtime=options.realtime)
