"""The capture thread: a :class:`SourceStream` drives one reader and hands frames on.

Live sources keep only the latest frame (a slow consumer sees fresh frames; the stale ones
are dropped and counted) and reconnect with exponential back-off when the camera is lost;
files and folders deliver every frame in order (exact counts) and end cleanly. A live read()
that blocks (an RTSP or CSI stream that stalls without an end-of-stream) is caught by a
watchdog: no frame for ``stall_timeout`` seconds counts as a lost camera.
Python 3.6 + numpy + OpenCV.
"""
import logging
import threading
import time

import cv2

from edge.sources.readers import release_quietly
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

STALL_TIMEOUT = 5.0  # s without a frame from a live source = lost (its read() may never return)
READ_RETURN_WAIT = 1.0  # s stop() waits for a running read (one frame of a >= 1 fps stream)
HEALTHY_FRAMES = 10  # frames after a (re)open that make a later loss a fresh one (full budget)


def loop_count(loop):
    """``--loop`` as replays: True (the bare flag) or a negative number = forever (-1)."""
    if loop is True:
        return -1
    count = int(loop or 0)
    return -1 if count < 0 else count


class Frame(object):
    """One captured frame: its index in the stream, a name, the BGR image, capture time.

    ``time`` is time.monotonic() (a Jetson has no RTC: the wall clock jumps at NTP sync).
    """

    __slots__ = ("index", "name", "image", "time")

    def __init__(self, index, name, image, when):
        self.index = index
        self.name = name
        self.image = image
        self.time = when


_STALLED = object()
_STOPPED = object()


class _ReadWorker(object):
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
        """The read's result, ``_STALLED`` after ``timeout`` s, ``_STOPPED`` once ``stop``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._requested = True
            self._result = None
            self._cond.notify_all()
            while self._result is None:
                if stop.is_set():
                    return _STOPPED
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _STALLED
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


class SourceStream(object):
    """Runs a :class:`Reader` on its own thread and hands frames to one consumer.

    Live readers: a one-slot mailbox (latest frame wins; overwritten frames are counted in
    ``dropped``), a stall watchdog (no frame within ``stall_timeout`` s = lost; 0 turns it
    off) and reconnection with back-off ``backoff * 2**k`` (at most ``max_backoff``) for
    ``reconnect_attempts`` tries. The budget and the back-off only start afresh once a
    connection delivered ``healthy_frames`` frames: a camera that opens but never delivers
    ends the run instead of reconnecting forever. Files/folders: a bounded queue the thread
    blocks on, so no frame is ever lost; ``loop`` replays them N more times (-1 or True:
    forever, 0 or False: once). ``wait(seconds) -> stopped`` is the back-off sleep
    (tests inject one).
    """

    def __init__(self, reader, loop=False, reconnect_attempts=5, backoff=0.5,
                 max_backoff=8.0, queue_size=4, stall_timeout=STALL_TIMEOUT,
                 healthy_frames=HEALTHY_FRAMES, wait=None):
        self.reader = reader
        self.loop = loop_count(loop)
        self.replays = 0
        self.reconnect_attempts = int(reconnect_attempts)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.queue_size = int(queue_size)
        self.stall_timeout = float(stall_timeout or 0.0)
        self.healthy_frames = max(int(healthy_frames), 1)
        self.captured = 0
        self.dropped = 0
        self.reconnects = 0
        self.stalls = 0
        self.end_reason = None
        self.error = None
        self._frames = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._done = False
        self._thread = None
        self._worker = None
        self._retired = []  # abandoned read workers: stop() waits for their reads to return
        self._attempt = 0  # reconnect attempts since frames last flowed
        self._delay = self.backoff
        self._since_open = 0  # frames delivered since the last (re)open
        self.reconnecting = False  # True while a lost live source is being reopened

    @property
    def live(self):
        return self.reader.live

    @property
    def description(self):
        return self.reader.description

    @property
    def fps(self):
        return self.reader.fps

    @property
    def skipped(self):
        """Image files the reader skipped because they decode only partly."""
        return getattr(self.reader, "skipped", 0)

    def start(self):
        """Open the source (errors surface here, in the caller) and start capturing."""
        LOG.info("opening %s", self.description)
        self.reader.open()
        LOG.info("opened %s (%s)", self.description,
                 "live, latest frame wins" if self.live else "every frame")
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()
        return self

    def get(self, timeout=None):
        """The next frame, or None at the end of the stream (or after ``timeout`` s)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._frames and not self._done:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(0.1 if remaining is None else min(0.1, remaining))
            if not self._frames:
                return None
            frame = self._frames.pop(0)
            self._cond.notify_all()
            return frame

    @property
    def finished(self):
        """True once the stream ended and every delivered frame was taken."""
        with self._cond:
            return self._done and not self._frames

    def stop(self, timeout=5.0):
        """Stop capturing (safe to call twice); the capture thread releases the source.

        A capture thread stuck in a blocking open() is left to finish on its own (it is a
        daemon and releases the source when that call returns): nothing is released under
        a running OpenCV call.
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            self._close_reader()  # opened by start() but never captured
            return
        if thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            LOG.warning("capture from %s did not stop within %.0f s (blocked in OpenCV): "
                        "leaving it to end on its own", self.description, timeout)
        elif not self._join_retired(time.monotonic() + min(timeout, READ_RETURN_WAIT)):
            LOG.warning("a read from %s is still blocked in OpenCV: it ends on its own when "
                        "the source delivers or closes", self.description)

    def _join_retired(self, deadline):
        """Wait (until ``deadline``) for abandoned read workers; True when all ended."""
        ended = True
        for worker in list(self._retired):
            ended = worker.join(deadline - time.monotonic()) and ended
        return ended

    # -- capture thread ------------------------------------------------------------------
    def _run(self):
        try:
            self._capture_loop()
        except NanosegError as exc:
            self.error = str(exc)
            self.end_reason = "error"
            LOG.error("%s", exc)
        except Exception as exc:  # keep the consumer from hanging on an unexpected bug
            self.error = "capture thread failed: {!r}".format(exc)
            self.end_reason = "error"
            LOG.exception("capture from %s failed", self.description)
        finally:
            self._release_reader()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _capture_loop(self):
        index = 0
        while not self._stop.is_set():
            item = self._read_safely()
            if item is None:
                if self._stop.is_set():
                    self.end_reason = "stopped"
                    return
                if not self._recover():
                    return
                continue
            name, image = item
            self._deliver(Frame(index, name, image, time.monotonic()))
            index += 1
        self.end_reason = "stopped"

    def _read_safely(self):
        """A frame, or None when the reader ends, stalls or a live reader fails (logged)."""
        try:
            if self.live and self.stall_timeout > 0:
                return self._read_watched()
            return self.reader.read()
        except (NanosegError, cv2.error, OSError) as exc:
            if not self.live:
                raise
            LOG.warning("reading %s failed: %s", self.description,
                        str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
            return None

    def _read_watched(self):
        """reader.read() through the worker; a read that outlasts stall_timeout = lost."""
        if self._worker is None:
            self._worker = _ReadWorker(self.reader.read)
        item = self._worker.read(self.stall_timeout, self._stop)
        if item is _STOPPED:
            return None
        if item is _STALLED:
            self.stalls += 1
            LOG.warning("no frame from %s for %.1f s: treating it as lost", self.description,
                        self.stall_timeout)
            self._abandon_worker()
            return None
        return item

    def _abandon_worker(self):
        """After a stall: detach the connection the stuck read holds and walk away."""
        worker, self._worker = self._worker, None
        self._hand_over(worker, self.reader.detach())

    def _hand_over(self, worker, leftover):
        """Abandon ``worker``; ``leftover`` (its connection) is released after its read."""
        cleanup = None
        if leftover is not None:
            description = self.description

            def cleanup():
                release_quietly(leftover, description)
        if not worker.abandon(cleanup) and cleanup is not None:
            cleanup()
        self._retire(worker)

    def _retire(self, worker):
        """Keep ``worker`` for stop() to wait on; forget the ones that already ended."""
        self._retired = [w for w in self._retired if not w.join(0)] + [worker]

    def _release_reader(self):
        """At the end of the capture thread: close the reader, never under a running read."""
        worker, self._worker = self._worker, None
        if worker is not None:
            leftover = self.reader.detach()
            if leftover is None:  # a reader without detach(): close it after its read
                if worker.abandon(self._close_reader):
                    LOG.warning("%s is still inside read(): it is closed when that returns",
                                self.description)
                else:
                    self._close_reader()
                self._retire(worker)
                return
            self._hand_over(worker, leftover)
        self._close_reader()

    def _close_reader(self):
        try:
            self.reader.close()
        except Exception as exc:
            LOG.warning("closing %s failed: %r", self.description, exc)

    def _recover(self):
        """After a None read: loop a file, reconnect a live source, or end. True = go on."""
        if not self.live:
            if self.captured and (self.loop < 0 or self.replays < self.loop):
                self.replays += 1
                self.reader.close()
                self.reader.open()
                return True
            self.end_reason = "end of source"
            LOG.info("end of %s after %d frames", self.description, self.captured)
            return False
        return self._reconnect()

    def _reconnect(self):
        """Reopen a lost live source with exponential back-off; False when it stays lost.

        Attempts and back-off carry over between losses unless the connection delivered
        ``healthy_frames`` frames since it was opened.
        """
        if self._since_open >= self.healthy_frames:
            self._attempt = 0
            self._delay = self.backoff
        self._close_reader()
        self.reconnecting = True
        try:
            return self._reopen()
        finally:
            self.reconnecting = False

    def _reopen(self):
        """The reconnect attempts with their back-off; True once the source is open again."""
        while self._attempt < self.reconnect_attempts:
            self._attempt += 1
            delay = self._delay
            self._delay = min(self._delay * 2.0, self.max_backoff)
            LOG.warning("lost %s: reconnect attempt %d/%d in %.1f s", self.description,
                        self._attempt, self.reconnect_attempts, delay)
            if self._wait(delay):
                self.end_reason = "stopped"
                return False
            try:
                self.reader.open()
            except NanosegError as exc:
                LOG.warning("reconnect %d/%d failed: %s", self._attempt,
                            self.reconnect_attempts, exc)
                continue
            self.reconnects += 1
            self._since_open = 0
            LOG.info("reconnected to %s", self.description)
            return True
        self.end_reason = "source lost"
        self.error = "{} was lost and {} reconnect attempts failed".format(
            self.description, self.reconnect_attempts)
        LOG.error("%s: stopping", self.error)
        return False

    def _deliver(self, frame):
        with self._cond:
            self.captured += 1
            self._since_open += 1
            if self.live:
                if self._frames:
                    self.dropped += len(self._frames)
                self._frames = [frame]
            else:
                while len(self._frames) >= self.queue_size and not self._stop.is_set():
                    self._cond.wait(0.1)
                self._frames.append(frame)
            self._cond.notify_all()
