"""Sink workers: slow sinks run on their own thread so the render thread never waits on them.

Every :class:`edge.sinks.Sink` declares ``delivery``; :func:`wrap` turns it into what the
render thread writes to:

- ``"inline"``: the sink itself, written on the render thread (cheap sinks);
- ``"every"``: an :class:`EveryWorker`, a thread with a bounded queue that never drops a
  frame: when the sink falls behind, the render thread waits, and the wait (total, median)
  and the deepest queue are counted (video file, mask PNGs);
- ``"latest"``: a :class:`LatestWorker`, a thread that always takes the newest frame (of
  each source, in turn); older ones are superseded and counted, which is not an error
  (window, browser viewer).

A worker calls its sink's ``write`` and ``close`` on its own thread only (HighGUI wants a
window's calls on one thread). Ending is two steps, so several workers finish in parallel
against one deadline: ``signal_end()`` (returns at once; the worker drains what is queued,
then closes its sink) and ``join(deadline)``; ``close(timeout)`` does both for one worker.
A sink's exception is reported once through ``fail`` as one line (the traceback goes to
the log); the worker then discards frames until it is closed.
"""
import collections
import logging
import queue
import threading
import time

import numpy as np

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
DELIVERIES = ("inline", "every", "latest")
EVERY_QUEUE = 8  # frames an "every" worker holds (each a frame + its overlay: ~5 MB at 720p)
WAIT_HISTORY = 20000  # producer waits kept for the median (bounded memory)


def one_line(exc):
    """``Type: first line of the message``: an unexpected exception as a one-line error."""
    lines = str(exc).strip().splitlines()
    return "{}: {}".format(type(exc).__name__, lines[0]) if lines else type(exc).__name__


def wrap(sink, fail, queue_size=EVERY_QUEUE):
    """The sink as the render thread should write it, by its ``delivery`` attribute."""
    delivery = getattr(sink, "delivery", "inline")
    if delivery == "inline":
        return sink
    if delivery == "every":
        return EveryWorker(sink, fail, queue_size).start()
    if delivery == "latest":
        return LatestWorker(sink, fail).start()
    raise NanosegError("{} declares delivery {!r}: use one of {}".format(
        type(sink).__name__, delivery, ", ".join(DELIVERIES)))


def sink_stats(sink):
    """The summary entry of a wrapped sink (a worker's counts, or just the inline sink)."""
    stats = getattr(sink, "stats", None)
    if stats is not None:
        return stats()
    return collections.OrderedDict([("sink", type(sink).__name__), ("delivery", "inline")])


class Worker(object):
    """What both workers share: the thread, the sink calls, error reporting, closing."""

    delivery = None

    def __init__(self, sink, fail):
        self.sink = sink
        self.name = type(sink).__name__
        if getattr(sink, "source_name", None):  # one of several sources' outputs
            self.name += "[{}]".format(sink.source_name)
        self.written = 0
        self.failed = False
        self._doing = None  # "write of frame N" / "close": what a stuck worker is stuck in
        self._fail = fail
        self._thread = threading.Thread(target=self._run, name="sink-" + self.name,
                                        daemon=True)

    def start(self):
        self._thread.start()
        return self

    @property
    def needs_render(self):
        return self.sink.needs_render  # may change per frame (the viewer: while watched)

    @property
    def wants_stop(self):
        return self.failed or self.sink.wants_stop

    def _write(self, result):
        """One sink call; a failure becomes the run's one-line error (once)."""
        if self.failed:
            return
        self._doing = "write of frame {}".format(result.index)
        try:
            self.sink.write(result)
            self.written += 1
        except NanosegError as exc:
            self.failed = True
            self._fail(str(exc))
        except Exception as exc:  # a bug or a driver error: stop, but say where
            self.failed = True
            self._fail("the {} failed on frame {}: {} (the log has the traceback)".format(
                self.name, result.index, one_line(exc)), exc_info=True)
        finally:
            self._doing = None

    def _run(self):
        try:
            self._serve()
        except Exception as exc:  # never expected: the sink calls are guarded
            self.failed = True
            self._fail("the {} worker stopped: {}".format(self.name, one_line(exc)),
                       exc_info=True)
        finally:
            self._doing = "close"
            try:
                self.sink.close()
            except NanosegError as exc:  # e.g. a recording not finalized: already one line
                self._fail(str(exc))
            except Exception as exc:
                self._fail("closing {} failed: {}".format(self.name, one_line(exc)))
            self._doing = None

    def _serve(self):
        raise NotImplementedError

    def signal_end(self):
        """Ask the worker to drain its queue, close the sink and end; returns at once."""
        raise NotImplementedError

    def join(self, deadline):
        """Wait for the worker until ``deadline`` (time.monotonic()); True once it ended."""
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        return not self._thread.is_alive()

    def stuck_message(self, timeout):
        """The one-line error for a worker still running at the deadline: which sink, where."""
        doing = self._doing or "its queue"
        return "the {} did not finish within {:g} s (stuck in {}{}): its file may be " \
               "incomplete".format(self.name, float(timeout), doing, self._backlog())

    def _backlog(self):
        return ""

    def close(self, timeout=15.0):
        """Drain, close the sink on the worker thread, wait at most ``timeout`` s."""
        self.signal_end()
        if not self.join(time.monotonic() + float(timeout)):
            self._fail(self.stuck_message(timeout))

    def stats(self):
        out = collections.OrderedDict()
        out["sink"] = self.name
        out["delivery"] = self.delivery
        out["written"] = self.written
        counts = getattr(self.sink, "counts", None)
        if counts is not None:
            out.update(sorted(counts().items()))
        return out


class EveryWorker(Worker):
    """Every frame reaches the sink, in order; a full queue makes the producer wait."""

    delivery = "every"

    def __init__(self, sink, fail, queue_size=EVERY_QUEUE):
        Worker.__init__(self, sink, fail)
        self.queue = queue.Queue(maxsize=max(int(queue_size), 1))
        self.max_depth = 0
        # a preallocated ring: a deque of floats grew by ~0.6 MB over a soak's first
        # WAIT_HISTORY waits, which a soak cannot tell from a leak
        self._waits = np.zeros(WAIT_HISTORY, np.float64)
        self._wait_total = 0.0
        self._wait_count = 0
        self._ending = threading.Event()

    def write(self, result):
        """Queue ``result``; waits (and counts the wait) while the queue is full."""
        if self.failed:
            return
        try:
            self.queue.put_nowait(result)
        except queue.Full:
            if not self._wait_count:
                LOG.warning("the %s is slower than the loop: its queue of %d frames is full, "
                            "so the loop waits for it (every frame is still written)",
                            self.name, self.queue.maxsize)
            started = time.monotonic()
            while not self.failed and self._thread.is_alive():
                try:
                    self.queue.put(result, timeout=0.2)
                    break
                except queue.Full:
                    continue
            self._count_wait((time.monotonic() - started) * 1000.0)
        self.max_depth = max(self.max_depth, self.queue.qsize())

    def _count_wait(self, ms):
        self._waits[self._wait_count % len(self._waits)] = ms
        self._wait_total += ms
        self._wait_count += 1

    def _serve(self):
        while True:
            try:
                result = self.queue.get(timeout=0.2)
            except queue.Empty:
                if self._ending.is_set():
                    return  # drained after signal_end (whose marker did not fit)
                continue
            if result is None:
                return
            self._write(result)

    def signal_end(self):
        """The end marker goes behind the queued frames, or, when the queue is full, the
        flag ends the worker once it has drained them (never blocks the caller)."""
        self._ending.set()
        try:
            self.queue.put_nowait(None)
        except queue.Full:
            pass

    def _backlog(self):
        return "; {} frames still queued".format(self.queue.qsize())

    def stats(self):
        out = Worker.stats(self)
        waits = self._waits[:min(self._wait_count, len(self._waits))]
        out["waits"] = self._wait_count
        out["wait_total_ms"] = round(self._wait_total, 3)
        out["wait_median_ms"] = round(float(np.median(waits)), 3) if len(waits) else 0.0
        out["max_queue"] = self.max_depth
        out["queue_size"] = self.queue.maxsize
        return out


class LatestWorker(Worker):
    """The sink gets the newest frame whenever it is free; older ones are superseded."""

    delivery = "latest"

    def __init__(self, sink, fail):
        Worker.__init__(self, sink, fail)
        self.superseded = 0
        self._cond = threading.Condition()
        self._pending = collections.OrderedDict()  # source -> its newest frame, oldest first
        self._ending = False

    def write(self, result):
        source = getattr(result, "source", 0)
        with self._cond:
            if self._pending.pop(source, None) is not None:
                self.superseded += 1
            self._pending[source] = result  # to the back: sources are served in turn
            self._cond.notify()

    def _serve(self):
        while True:
            with self._cond:
                while not self._pending and not self._ending:
                    self._cond.wait(0.2)
                if not self._pending:
                    return
                result = self._pending.popitem(last=False)[1]
            self._write(result)

    def signal_end(self):
        with self._cond:
            self._ending = True
            self._cond.notify()

    def stats(self):
        out = Worker.stats(self)
        out["superseded"] = self.superseded
        return out
