"""The capture thread's body, for :class:`edge.sources.stream.SourceStream`: read (through the
stall watchdog for live sources), deliver, then loop a file or reconnect a lost camera with
back-off, and release the reader, never under a running read().
Python 3.6 + numpy + OpenCV.
"""
import functools
import logging
import time

import cv2

from edge.sources.read_worker import STALLED, STOPPED, ReadWorker
from edge.sources.readers import release_quietly
from nanoseg.errors import NanosegError

LOG = logging.getLogger("edge.sources.stream")  # the stream's one logger name for log filters


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


class CaptureThread(object):
    """What :class:`SourceStream` runs on its capture thread (``_run``); it keeps the state
    (counts, back-off, read workers) on the stream, which sets it up in its constructor."""

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
            self._worker = ReadWorker(self.reader.read)
        item = self._worker.read(self.stall_timeout, self._stop)
        if item is STOPPED:
            return None
        if item is STALLED:
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
            cleanup = functools.partial(release_quietly, leftover, self.description)
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
