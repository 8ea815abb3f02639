"""The browser viewer's HTTP server: a dashboard for a headless Jetson at http://HOST:PORT/.

``/`` is the dashboard (edge/viewer/dashboard.py: one stream per source and the live
numbers), ``/stream.mjpg`` and ``/stream/N.mjpg`` each source's MJPEG stream,
``/frame.jpg`` the latest frame (edge/viewer/stream.py), ``/stats.json`` the numbers
(edge/viewer/stats_endpoint.py). Read-only: GET only. Standard library http.server +
threading (Python 3.6 has no ThreadingHTTPServer, so the mixin is spelled out). Bound to
127.0.0.1 by default: exposing the camera on the network is an explicit choice. A client
that disconnects (a closed tab, a reset) is one DEBUG line; one that stays silent, or stops
reading the stream, is dropped after ``idle_timeout`` seconds so it cannot hold a thread
forever.
"""
import logging
import socket
import sys
import threading
import time

from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn

from edge.viewer.dashboard import send_asset, send_page
from edge.viewer.stats_endpoint import send_stats
from edge.viewer.stream import (FRAME_PATH, STREAM_PATH, FrameBoard, board_index,
                                send_frame, send_stream)
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
IDLE_TIMEOUT = 20.0  # s a client may send nothing, or not read, before its thread drops it
BACKLOG = 64  # connections waiting to be accepted (a browser opens several at once)
# a client that went away mid-request: expected, not a server error
CLIENT_GONE = (ConnectionError, socket.timeout)


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
    """Serves the dashboard, its assets, the statistics, the streams and single frames."""

    def setup(self):
        self.timeout = self.server.idle_timeout  # the socket's: reads and writes give up
        BaseHTTPRequestHandler.setup(self)

    def do_GET(self):
        path = self.path.split("?")[0]
        server = self.server
        if path in ("/", "/index.html"):
            send_page(self, server.title, server.names)
        elif path == "/stats.json":
            send_stats(self, server.viewer.stats_provider, server.names)
        elif send_asset(self, path):
            pass
        elif self._board(STREAM_PATH, path) is not None:
            send_stream(self, self._board(STREAM_PATH, path))
        elif self._board(FRAME_PATH, path) is not None:
            send_frame(self, self._board(FRAME_PATH, path))
        else:
            self.send_body(404, "text/plain", b"not found: try /\n")

    def _board(self, pattern, path):
        index = board_index(pattern, path)
        boards = self.server.boards
        return boards[index] if index is not None and index < len(boards) else None

    def send_body(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        LOG.debug("viewer %s: " + fmt, self.client_address[0], *args)


class MjpegViewer(object):
    """Start with :meth:`start`, feed JPEG bytes with :meth:`publish`, end with :meth:`close`.

    ``port=0`` picks a free port (see ``.port``), handy for tests. ``idle_timeout``: seconds
    a client may send nothing or read nothing before it is dropped. ``sources``: the source
    names, one stream each (default: one); ``stats_provider``: a callable returning the
    ``/stats.json`` dict (edge.stats.LiveStats.snapshot).
    """

    def __init__(self, host="127.0.0.1", port=8080, title="camera", idle_timeout=IDLE_TIMEOUT,
                 sources=None, stats_provider=None):
        self.host = host
        self.requested_port = check_port(int(port))
        self.title = title
        self.idle_timeout = float(idle_timeout)
        self.names = list(sources or ["camera"])
        self.boards = [FrameBoard() for _ in self.names]
        self.stats_provider = stats_provider
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
        self._server.boards = self.boards
        self._server.names = self.names
        self._server.viewer = self  # the stats provider may be given after start()
        self._server.title = self.title
        self._server.idle_timeout = self.idle_timeout
        self._thread = threading.Thread(target=self._server.serve_forever, name="viewer",
                                        kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        LOG.info("viewer at %s", self.url)
        return self

    @property
    def board(self):
        """The first source's board (the single-source viewer's)."""
        return self.boards[0]

    def publish(self, jpeg, source=0):
        self.boards[source].publish(jpeg)

    def watching_source(self, source):
        return self.boards[source].watchers > 0

    @property
    def watching(self):
        """True while at least one client watches a stream: only then is a JPEG worth making."""
        return any(board.watchers > 0 for board in self.boards)

    def close(self):
        """Stop serving: streaming clients finish their current part and disconnect."""
        for board in self.boards:
            board.close()
        if self._server is not None:
            time.sleep(0.05)
            self._server.shutdown()
            self._server.server_close()
            self._server = None
