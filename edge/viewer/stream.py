"""The stream endpoints: the latest JPEG of each source on a :class:`FrameBoard`, served as
``multipart/x-mixed-replace`` (``/stream.mjpg``, ``/stream/N.mjpg``) or one frame at a time
(``/frame.jpg``, ``/frame/N.jpg``). A board counts its watchers, so JPEGs are made only
while someone watches.
"""
import re
import threading

BOUNDARY = "nanosegframe"
STREAM_PATH = re.compile(r"^/stream(?:/(\d+))?\.mjpg$")
FRAME_PATH = re.compile(r"^/frame(?:/(\d+))?\.jpg$")


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


def board_index(pattern, path):
    """The source index a stream or frame path names (none: source 0), or None if it is
    not such a path."""
    match = pattern.match(path)
    if match is None:
        return None
    return int(match.group(1) or 0)


def send_stream(handler, board):
    """One JPEG part per new frame until the client leaves or the viewer closes."""
    handler.send_response(200)
    handler.send_header("Content-Type",
                        "multipart/x-mixed-replace; boundary={}".format(BOUNDARY))
    handler.send_header("Cache-Control", "no-store")
    handler.end_headers()
    seq = 0
    board.watch(1)
    try:
        while not board.closed:  # a client that leaves ends it in the server's handle_error
            seq, jpeg = board.wait_next(seq)
            if jpeg is None:
                continue
            handler.wfile.write("--{}\r\nContent-Type: image/jpeg\r\nContent-Length: {}"
                                "\r\n\r\n".format(BOUNDARY, len(jpeg)).encode("ascii"))
            handler.wfile.write(jpeg)
            handler.wfile.write(b"\r\n")
            handler.wfile.flush()
    finally:
        board.watch(-1)


def send_frame(handler, board):
    """The next frame as one JPEG (503 when none comes within 5 s)."""
    board.watch(1)
    try:
        _, jpeg = board.wait_next(0, timeout=5.0)
    finally:
        board.watch(-1)
    if jpeg is None:
        handler.send_body(503, "text/plain", b"no frame yet\n")
    else:
        handler.send_body(200, "image/jpeg", jpeg)
