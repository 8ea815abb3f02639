"""Outputs named by URIs, like jetson-utils' videoOutput: H.264 files, RTP and RTSP.

    --output overlay.mp4 | overlay.mkv   H.264 through GStreamer (hardware on a Jetson)
    --output rtp://HOST:PORT             H.264 RTP over UDP to HOST
    --output rtsp://@:PORT/NAME          an RTSP server on this device (@: every interface)

Each is a :class:`edge.sinks.Sink` writing the rendered overlay into an OpenCV
``cv2.VideoWriter`` on a GStreamer pipeline (edge/gst.py). ``close()`` releases the writer,
which sends EOS: only then does mp4mux write the index that makes the file playable, so the
runtime's close on SIGINT/SIGTERM/end of source is what finalizes it. OpenCV cannot serve
RTSP, so for rtsp:// the writer sends RTP to a local UDP port and gst-rtsp-server (python3-gi)
serves that port's packets. A file without GStreamer falls back to OpenCV's software writer.
"""
import logging
import os
import socket
import threading

from urllib.parse import urlsplit

import cv2

from edge import gst
from nanoseg.errors import NanosegError
from edge.sinks import VideoSink, WriterSink, check_output_folder
from edge.sources import opencv_has_gstreamer

LOG = logging.getLogger(__name__)
OUTPUT_FORMS = ("FILE.mp4 or FILE.mkv (H.264), another video file (OpenCV's writer)",
                "rtp://HOST:PORT", "rtsp://@:PORT/NAME")
RTSP_DEFAULT_PORT = 8554
RTSP_APT_PACKAGES = gst.RTSP_APT_PACKAGES
SERVER_STOP_TIMEOUT = 5.0
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
                 bitrate_kbps=gst.DEFAULT_BITRATE_KBPS):
        WriterSink.__init__(self, fps)
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
        LOG.info("--output %s: H.264 (%s), %dx%d, %.1f fps", self.description, self.encoder,
                 width, height, self.fps)
        return writer

    def _closed_message(self):
        return "--output {}: {} frames".format(self.description, self.frames)


class H264FileSink(GstWriterSink):
    """An H.264 .mp4 / .mkv through GStreamer's encoder (nvv4l2h264enc on a Jetson)."""

    def __init__(self, path, fps=30.0, encoder=None, bitrate_kbps=gst.DEFAULT_BITRATE_KBPS):
        super(H264FileSink, self).__init__(path, fps, encoder, bitrate_kbps)
        self.path = path
        self.container = os.path.splitext(path)[1].lower()
        check_output_folder(path, OUTPUT_FLAG)

    def pipeline(self):
        return gst.file_pipeline(os.path.abspath(self.path), self.encoder, self.container,
                                 self.bitrate_kbps)


class RtpSink(GstWriterSink):
    """H.264 RTP (payload 96) over UDP to ``host:port``; receivers need the caps (see README)."""

    def __init__(self, host, port, fps=30.0, encoder=None,
                 bitrate_kbps=gst.DEFAULT_BITRATE_KBPS, description=None):
        super(RtpSink, self).__init__(description or "rtp://{}:{}".format(host, port), fps,
                                      encoder, bitrate_kbps)
        self.host = host
        self.port = int(port)

    def pipeline(self):
        return gst.rtp_pipeline(self.host, self.port, self.encoder, self.bitrate_kbps)


class RtspServerSink(RtpSink):
    """An RTSP server at ``rtsp://host:port/name`` streaming the overlay as H.264.

    The server starts at once (clients may connect before the first frame); the writer sends
    RTP to a free UDP port on 127.0.0.1 that the server's media reads.
    """

    def __init__(self, host, port, name, fps=30.0, encoder=None,
                 bitrate_kbps=gst.DEFAULT_BITRATE_KBPS):
        rtp_port = free_port()
        super(RtspServerSink, self).__init__(
            "127.0.0.1", rtp_port, fps, encoder, bitrate_kbps,
            description="rtsp://{}:{}/{}".format(host, port, name))
        self.server = RtspServer(host, port, name, rtp_port).start()

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

    def __init__(self, host, port, name, rtp_port):
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
        factory.set_launch(gst.rtsp_media_launch(self.rtp_port))
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


def _require_gstreamer(uri, elements, exists):
    """The H.264 encoder to use for ``uri``; one-line errors for what is missing."""
    if not opencv_has_gstreamer():
        raise NanosegError("--output {} needs an OpenCV built with GStreamer (this cv2 {} is "
                           "not): use JetPack's / apt's python3-opencv, not pip's "
                           "opencv-python".format(uri, cv2.__version__))
    encoder = gst.choose_h264_encoder(exists)
    if encoder is None:
        raise NanosegError("--output {} needs an H.264 encoder; none of {} is installed: "
                           "{}".format(uri, " ".join(gst.H264_ENCODERS),
                                       gst.describe_missing(gst.H264_ENCODERS)))
    missing = gst.missing_elements(elements, exists)
    if missing:
        raise NanosegError("--output {} needs GStreamer elements that are missing: {}".format(
            uri, gst.describe_missing(missing)))
    return encoder


def _host_port(uri, split, default_port=None):
    try:
        port = split.port or default_port
    except ValueError:
        port = None
    if not port:
        raise NanosegError("--output {} needs a port 1-65535, e.g. rtp://127.0.0.1:5000".format(
            uri))
    return split.hostname, port


def open_output(uri, fps=30.0, bitrate_kbps=gst.DEFAULT_BITRATE_KBPS,
                exists=gst.element_exists):
    """The sink for one ``--output`` value (see the module docstring for the forms)."""
    text = str(uri).strip()
    lower = text.lower()
    if lower.startswith("rtp://"):
        host, port = _host_port(text, urlsplit(text))
        if not host:
            raise NanosegError("--output {} needs a host, e.g. rtp://192.168.1.10:5000".format(
                text))
        encoder = _require_gstreamer(text, gst.WRITER_ELEMENTS + gst.RTP_ELEMENTS, exists)
        return RtpSink(host, port, fps, encoder, bitrate_kbps)
    if lower.startswith("rtsp://"):
        split = urlsplit(text.replace("://@", "://", 1))
        name = split.path.strip("/")
        if not name:
            raise NanosegError("--output {} needs a stream name: rtsp://@:PORT/NAME".format(text))
        _, port = _host_port(text, split, RTSP_DEFAULT_PORT)
        encoder = _require_gstreamer(text, gst.WRITER_ELEMENTS + gst.RTP_ELEMENTS
                                     + gst.RTSP_SERVER_ELEMENTS, exists)
        return RtspServerSink(split.hostname or "0.0.0.0", port, name, fps, encoder,
                              bitrate_kbps)
    if "://" in text:
        raise NanosegError("--output {}: unknown kind; use one of: {}".format(
            text, "; ".join(OUTPUT_FORMS)))
    return _file_output(text, fps, bitrate_kbps, exists)


def _file_output(path, fps, bitrate_kbps, exists):
    """H.264 through GStreamer for .mp4/.mkv when it can; OpenCV's writer otherwise."""
    container = os.path.splitext(path)[1].lower()
    if not container:
        raise NanosegError("--output {} has no extension: name a .mp4 or .mkv file, or use "
                           "one of: {}".format(path, "; ".join(OUTPUT_FORMS)))
    if container in gst.CONTAINER_MUXERS:
        try:
            encoder = _require_gstreamer(path, gst.WRITER_ELEMENTS + (
                gst.CONTAINER_MUXERS[container], "filesink"), exists)
        except NanosegError as exc:
            LOG.warning("%s; writing it with OpenCV's software writer instead", exc)
        else:
            return H264FileSink(path, fps, encoder, bitrate_kbps)
    return VideoSink(path, fps, flag=OUTPUT_FLAG)
