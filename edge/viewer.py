"""A tiny MJPEG-over-HTTP viewer for a headless Jetson: open http://HOST:PORT/ in a browser.

``/`` is an index page with one ``<img>``; ``/stream.mjpg`` is ``multipart/x-mixed-replace``
(one JPEG part per published frame); ``/frame.jpg`` is the latest frame. Standard library
http.server + threading (Python 3.6 has no ThreadingHTTPServer, so the mixin is spelled out).
Bound to 127.0.0.1 by default: exposing the camera on the network is an explicit choice.
A client that disconnects (a closed tab, a reset) is one DEBUG line; one that stays silent,
or stops reading the stream, is dropped after ``idle_timeout`` seconds so it cannot hold a
thread forever.
"""
import html
import logging
import socket
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
BOUNDARY = "nanosegframe"
IDLE_TIMEOUT = 20.0  # s a client may send nothing, or not read, before its thread drops it
BACKLOG = 64  # connections waiting to be accepted (a browser opens several at once)
# a client that went away mid-request: expected, not a server error
CLIENT_GONE = (ConnectionError, socket.timeout)
INDEX_HTML = (
    "<!doctype html><html><head><title>nanoseg</title>"
    "<style>body{{background:#111;color:#ddd;font-family:sans-serif;margin:0}}"
    "img{{display:block;max-width:100vw;max-height:95vh;margin:auto}}</style></head>"
    "<body><p>nanoseg live: {title}</p><img src=\"/stream.mjpg\" alt=\"live stream\"></body>"
    "</html>")


class FrameBoard(object):
    """The latest JPEG and a sequence number; streaming clients wait for the next one."""

    def __init__(self):
        self._cond = threading.Condition()
        self._jpeg = None
        self._seq = 0
        self._watchers = 0
        self.closed = False

    @property
    def watchers(self):
        """Clients connected right now (a stream, or a /frame.jpg waiting for its frame)."""
        with self._cond:
            return self._watchers

    def watch(self, delta):
        """A client arrives (+1) or leaves (-1): the publisher encodes only while one is."""
        with self._cond:
            self._watchers += delta

    def publish(self, jpeg):
        with self._cond:
            self._jpeg = bytes(jpeg)
            self._seq += 1
            self._cond.notify_all()

    def wait_next(self, seq, timeout=1.0):
        """(seq, jpeg) newer than ``seq``, or (seq, None) on timeout or close."""
        with self._cond:
            if self._seq <= seq and not self.closed:
                self._cond.wait(timeout)
            if self._seq <= seq or self._jpeg is None:
                return seq, None
            return self._seq, self._jpeg

    def close(self):
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def check_port(port, flag="--view-port"):
    """A one-line error unless ``port`` is 0 (any free port) to 65535; the socket layer's
    own error is an OverflowError from deep inside."""
    if not 0 <= port <= 65535:
        raise NanosegError("{} must be 1-65535 (0: any free port), got {}".format(flag, port))
    return port


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = BACKLOG
    idle_timeout = IDLE_TIMEOUT

    def handle_error(self, request, client_address):
        """A client that left is one DEBUG line; anything else is a bug, with its traceback
        (the default prints every one to stderr)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, CLIENT_GONE):
            LOG.debug("viewer client %s left (%s: %s)", client_address[0],
                      type(exc).__name__, exc)
        else:
            LOG.error("viewer: the request from %s failed", client_address[0], exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Serves the index page, the MJPEG stream and single frames from the server's board."""

    def setup(self):
        self.timeout = self.server.idle_timeout  # the socket's: reads and writes give up
        BaseHTTPRequestHandler.setup(self)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path in ("/", "/index.html"):
            page = INDEX_HTML.format(title=html.escape(str(self.server.title)))
            self._send(200, "text/html; charset=utf-8", page.encode("utf-8"))
        elif path == "/stream.mjpg":
            self.server.board.watch(1)
            try:
                self._stream()
            finally:
                self.server.board.watch(-1)
        elif path == "/frame.jpg":
            self.server.board.watch(1)
            try:
                _, jpeg = self.server.board.wait_next(0, timeout=5.0)
            finally:
                self.server.board.watch(-1)
            if jpeg is None:
                self._send(503, "text/plain", b"no frame yet\n")
            else:
                self._send(200, "image/jpeg", jpeg)
        else:
            self._send(404, "text/plain", b"not found: try /\n")

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self):
        """One JPEG part per new frame until the client leaves or the viewer closes."""
        self.send_response(200)
        self.send_header("Content-Type",
                         "multipart/x-mixed-replace; boundary={}".format(BOUNDARY))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        board, seq = self.server.board, 0
        while not board.closed:  # a client that leaves ends it in _Server.handle_error
            seq, jpeg = board.wait_next(seq)
            if jpeg is None:
                continue
            self.wfile.write("--{}\r\nContent-Type: image/jpeg\r\nContent-Length: {}"
                             "\r\n\r\n".format(BOUNDARY, len(jpeg)).encode("ascii"))
            self.wfile.write(jpeg)
            self.wfile.write(b"\r\n")
            self.wfile.flush()

    def log_message(self, fmt, *args):
        LOG.debug("viewer %s: " + fmt, self.client_address[0], *args)


class MjpegViewer(object):
    """Start with :meth:`start`, feed JPEG bytes with :meth:`publish`, end with :meth:`close`.

    ``port=0`` picks a free port (see ``.port``), handy for tests. ``idle_timeout``: seconds
    a client may send nothing or read nothing before it is dropped.
    """

    def __init__(self, host="127.0.0.1", port=8080, title="camera", idle_timeout=IDLE_TIMEOUT):
        self.host = host
        self.requested_port = check_port(int(port))
        self.title = title
        self.idle_timeout = float(idle_timeout)
        self.board = FrameBoard()
        self._server = None
        self._thread = None

    @property
    def port(self):
        return self._server.server_address[1] if self._server else self.requested_port

    @property
    def url(self):
        return "http://{}:{}/".format(self.host, self.port)

    def start(self):
        try:
            self._server = _Server((self.host, self.requested_port), _Handler)
        except (OSError, socket.error) as exc:
            raise NanosegError("--view-port {} on {} cannot be opened ({}): pick another port "
                               "or --view-host".format(self.requested_port, self.host, exc))
        self._server.board = self.board
        self._server.title = self.title
        self._server.idle_timeout = self.idle_timeout
        self._thread = threading.Thread(target=self._server.serve_forever, name="viewer",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        LOG.info("viewer at %s", self.url)
        return self

    def publish(self, jpeg):
        self.board.publish(jpeg)

    @property
    def watching(self):
        """True while at least one client is connected: only then is a JPEG worth making."""
        return self.board.watchers > 0

    def close(self):
        """Stop serving: streaming clients finish their current part and disconnect."""
        self.board.close()
        if self._server is not None:
            time.sleep(0.05)
            self._server.shutdown()
            self._server.server_close()
            self._server = None
