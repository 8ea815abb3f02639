"""The capture thread: a :class:`SourceStream` drives one reader and hands frames on.

Live sources keep only the latest frame (a slow consumer sees fresh frames; the stale ones
are dropped and counted) and reconnect with exponential back-off when the camera is lost;
files and folders deliver every frame in order (exact counts) and end cleanly. A live read()
that blocks (an RTSP or CSI stream that stalls without an end-of-stream) is caught by a
watchdog: no frame for ``stall_timeout`` seconds counts as a lost camera.
This module is the consumer's side (start, get, stop); what runs on the capture thread is
edge/sources/capture_thread.py, the watchdog's read worker edge/sources/read_worker.py.
Python 3.6 + numpy + OpenCV.
"""
import logging
import threading
import time

from edge.sources.capture_thread import CaptureThread

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


class SourceStream(CaptureThread):
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

