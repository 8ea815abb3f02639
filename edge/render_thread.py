"""The render thread: draws the overlay once and hands each result to the sinks, in order.

It sits between the inference loop (edge/runtime.py) and the slow sinks' workers
(edge/delivery.py), and closes them all against one deadline at the end of a run.
"""
import logging
import queue
import threading
import time

from edge import delivery, overlay, stats
from edge.delivery import one_line
from nanoseg.errors import NanosegError

LOG = logging.getLogger("edge.runtime")  # the pipeline's one logger name for log filters
FINISH_TIMEOUT = 15.0  # s for the sinks to finalize (systemd's stop timeout is 30 s)


class RenderThread(object):
    """Draws the overlay (once, if any sink shows it) and hands it to every sink, in order.

    Inline sinks are called on this thread; the others are wrapped by their ``delivery``
    (edge/delivery.py) and called on their own worker. Any exception in a sink ends the
    writing: it is logged with its traceback and kept in ``error`` (which stops the run);
    the thread keeps draining so the producer never blocks. When it ends it closes the
    inline sinks and tells every worker to drain and close; :meth:`finish` waits for all
    of them against one deadline (a worker drains its queue first, so files keep every
    frame handed over).
    """

    def __init__(self, sinks, contract, timer, alpha=0.5, queue_size=2,
                 finish_timeout=FINISH_TIMEOUT, visualize="overlay", hidden=()):
        self.contract = contract
        self.timer = timer
        self.alpha = alpha
        self.finish_timeout = float(finish_timeout)
        self.renderer = overlay.Renderer(contract, alpha, visualize, hidden)
        self.palette = self.renderer.palette
        self.queue = queue.Queue(maxsize=queue_size)
        self.error = None
        self.written = 0
        self.fps = 0.0
        self._doing = None  # what the thread is doing right now (for error messages)
        self._given_up = False
        self._lock = threading.Lock()
        self._error_lock = threading.Lock()
        self.sinks = []
        sinks = list(sinks)
        try:
            for sink in sinks:
                self.sinks.append(delivery.wrap(sink, self._fail))
        except BaseException:  # e.g. an unknown delivery: no worker or file left open
            self._unclosed = self.sinks + sinks[len(self.sinks):]
            self._end_sinks()
            self._wait_for_workers(time.monotonic() + self.finish_timeout)
            raise
        self._unclosed = list(self.sinks)
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)

    def start(self):
        self._thread.start()
        return self

    @property
    def wants_stop(self):
        return self.error is not None or any(s.wants_stop for s in self.sinks)

    def put(self, result, stop_event):
        """Hand a result over (blocks while the sinks catch up; gives up on stop/error)."""
        while not stop_event.is_set() and self.error is None and self._thread.is_alive():
            try:
                self.queue.put(result, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def finish(self):
        """Drain the queue, stop the thread, close every sink (finalizes files).

        Everything shares one deadline, ``finish_timeout`` from now: the render thread's
        drain, then every worker's drain and close, which run in parallel. Whatever is
        still inside a sink call at the deadline is named in ``error`` (its daemon thread
        dies with the process, so its file may be incomplete); the other sinks are closed.
        """
        deadline = time.monotonic() + self.finish_timeout
        while self._thread.is_alive():
            try:
                self.queue.put(None, timeout=0.2)
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        if self._thread.ident is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
        stuck = self._doing if self._thread.is_alive() else None
        if self._thread.is_alive():
            self._given_up = True
            self._fail("the render thread did not finish within {:g} s (stuck in {})".format(
                self.finish_timeout, sink_name(stuck) if stuck is not None else "a sink"))
        self._end_sinks(skip=stuck)
        self._wait_for_workers(deadline, skip=stuck)

    def _fail(self, message, exc_info=None):
        """Keep the first error; log this one (with the traceback of ``exc_info``)."""
        with self._error_lock:
            if self.error is None:
                self.error = message
        LOG.error("%s", message, exc_info=exc_info)

    def _run(self):
        finished = False
        try:
            while True:
                try:
                    result = self.queue.get(timeout=0.2)
                except queue.Empty:
                    if self._given_up:  # finish() timed out: end once the stuck call returns
                        finished = True
                        return
                    continue
                if result is None:
                    finished = True
                    return
                if self.error is not None:
                    continue  # keep draining so the producer never blocks
                try:
                    self._write(result)
                except NanosegError as exc:
                    self._fail(str(exc))
                except Exception as exc:  # a bug or a driver error: stop, but say where
                    what = "rendering the overlay" if self._doing is None else \
                        "the {}".format(sink_name(self._doing))
                    self._fail("{} failed on frame {}: {} (the log has the traceback)".format(
                        what, result.index, one_line(exc)), exc_info=True)
        finally:
            if not finished:
                self._fail("the render thread stopped unexpectedly")
            self._doing = None
            self._end_sinks()  # finish() waits for the workers

    def _write(self, result):
        t0 = time.monotonic()
        self._doing = None
        sinks = [sink for sink in self.sinks if stats.takes(sink, result)]
        if any(sink.needs_render for sink in sinks):  # per frame: the viewer's changes
            fps = result.info["fps"] if result.info else self.fps
            result.rendered = self.renderer.render(result.frame, result.small_labels,
                                                   fps, self.timer.latest())
            if result.info:
                result.info["stages_ms"]["render"] = stats.ms_since(t0)
        for sink in sinks:
            self._doing = sink
            sink.write(result)
        self._doing = None
        self.written += 1
        self.timer.add("render", time.monotonic() - t0)

    def _end_sinks(self, skip=None):
        """Tell every worker not told yet to drain and close (first, so they all finish in
        parallel), then close the inline sinks here; failures go to ``error``."""
        with self._lock:
            todo = [s for s in self._unclosed if s is not skip]
            self._unclosed = [s for s in self._unclosed if s is skip]
        workers = [s for s in todo if isinstance(s, delivery.Worker)]
        for worker in workers:
            worker.signal_end()
        for sink in todo:
            if isinstance(sink, delivery.Worker):
                continue
            try:
                sink.close()
            except Exception as exc:  # close the others anyway; the first error is reported
                self._fail("closing {} failed: {}".format(type(sink).__name__, one_line(exc)))

    def _wait_for_workers(self, deadline, skip=None):
        """Join every worker (but ``skip``) against the one ``deadline``; name the late ones."""
        for sink in self.sinks:
            if isinstance(sink, delivery.Worker) and sink is not skip and \
                    not sink.join(deadline):
                self._fail(sink.stuck_message(self.finish_timeout))


def sink_name(sink):
    """The class name of a sink, also when a worker wraps it (the name users know)."""
    return sink.name if isinstance(sink, delivery.Worker) else type(sink).__name__
