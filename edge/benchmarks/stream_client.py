"""One local browser stand-in for the viewer row: reads /stream.mjpg over HTTP."""
import socket
import threading
import time

from nanoseg.errors import NanosegError


class StreamClient(object):
    """One local browser stand-in reading /stream.mjpg on a thread until :meth:`stop`."""

    def __init__(self, viewer):
        self.bytes = 0
        self._stop = threading.Event()
        self._sock = socket.create_connection(("127.0.0.1", viewer.port), timeout=2.0)
        self._sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        self._thread = threading.Thread(target=self._read, name="bench-client", daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self._sock.recv(1 << 16)
            except OSError:  # timeout while no frame comes, or the viewer closed
                continue
            if not data:
                return
            self.bytes += len(data)

    def stop(self):
        self._stop.set()
        self._sock.close()
        self._thread.join(3.0)


def wait_until_watching(viewer, client_name, timeout=5.0):
    """Return once ``viewer`` has a client; else one line naming ``client_name`` (a row
    measured without its client would measure something else)."""
    deadline = time.monotonic() + timeout
    while not viewer.watching and time.monotonic() < deadline:
        time.sleep(0.01)
    if not viewer.watching:
        raise NanosegError("the {} did not connect".format(client_name))
