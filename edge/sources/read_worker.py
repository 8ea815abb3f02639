"""A reader's ``read()`` on a helper thread, so a read that never returns can be walked away
from (the stall watchdog of edge/sources/capture_thread.py). Python 3.6 + the standard library.
"""
import threading
import time

STALLED = object()  # read() results besides an item
STOPPED = object()


class ReadWorker(object):
    """``read()`` on a helper thread, so a read that never returns can be walked away from.

    The capture thread asks for one read at a time and waits at most the stall timeout. A
    stalled worker is abandoned with a ``cleanup`` (release the connection it reads from)
    that runs on the worker once its read finally returns: nothing is released under a
    running read().
    """

    def __init__(self, read, name="capture-read"):
        self._read = read
        self._cond = threading.Condition()
        self._requested = False
        self._running = False
        self._result = None
        self._abandoned = False
        self._cleanup = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def read(self, timeout, stop):
        """The read's result, ``STALLED`` after ``timeout`` s, ``STOPPED`` once ``stop``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._requested = True
            self._result = None
            self._cond.notify_all()
            while self._result is None:
                if stop.is_set():
                    return STOPPED
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return STALLED
                self._cond.wait(min(remaining, 0.1))
            kind, value = self._result
            self._result = None
        if kind == "error":
            raise value
        return value

    def abandon(self, cleanup=None):
        """Retire the worker. True: a read is running or pending and ``cleanup`` will run
        after it; False: the worker was idle (``cleanup`` is the caller's to run)."""
        with self._cond:
            pending = self._running or self._requested
            self._abandoned = True
            self._cleanup = cleanup if pending else None
            self._cond.notify_all()
            return pending

    def join(self, timeout):
        """Wait up to ``timeout`` s for the worker's thread to end; True when it has.

        A process must not exit while this thread is inside OpenCV's read(): the
        interpreter stops daemon threads by unwinding their C++ frames, and OpenCV's
        bindings abort the process on that ("FATAL: exception not rethrown").
        """
        self._thread.join(max(timeout, 0.0))
        return not self._thread.is_alive()

    def _run(self):
        while True:
            with self._cond:
                while not self._requested and not self._abandoned:
                    self._cond.wait()
                if self._abandoned:
                    break
                self._requested = False
                self._running = True
            try:
                result = ("item", self._read())
            except Exception as exc:  # handed to the capture thread, which decides
                result = ("error", exc)
            with self._cond:
                self._running = False
                if self._abandoned:
                    break
                self._result = result
                self._cond.notify_all()
        with self._cond:
            cleanup, self._cleanup = self._cleanup, None
        if cleanup is not None:
            cleanup()
