"""The live pipeline: capture ∥ (preprocess → infer → postprocess) ∥ render ∥ slow sinks.

Threads joined by bounded hand-offs: the source's capture thread (edge/sources/stream.py),
inference on the *calling* thread (the TensorRT backend pushes its CUDA context around each
call, so any one thread may run it), a render thread that draws the overlay once and hands
it to the sinks, and one worker per slow sink (edge/delivery.py: the video and mask writers
get every frame, the window and the viewer the latest). While the model runs on frame N,
frame N+1 is being captured and frame N-1 drawn and encoded, so end-to-end FPS approaches
inference FPS. The inference thread only preprocesses (into the backend's input buffer),
infers and thresholds at the model's size, through the Python API's Segmenter
(edge/segmenter.py: one inference path for scripts and the CLI); the frame-size label map
is made by whichever sink needs it.
Every stage is timed with time.monotonic() (a Jetson has no RTC: the wall clock jumps when
NTP syncs); :func:`run_pipeline` logs the timings periodically and returns a summary
(frames, dropped, frames whose model output had NaN/Inf, fps, per-stage median/p90 ms).
"""
import collections
import json
import logging
import queue
import threading
import time

import numpy as np

from edge import delivery, overlay, stats
from nanoseg.files import write_text_for_flag
from edge.delivery import one_line
from nanoseg import memory
from edge.segmenter import Segmenter
from nanoseg.errors import NanosegError
from edge.sinks import Result

LOG = logging.getLogger(__name__)
STAGES = ("capture", "pre", "infer", "post", "render")
HISTORY = 20000  # samples kept per stage (hours at camera rates; bounded memory)
FINISH_TIMEOUT = 15.0  # s for the sinks to finalize (systemd's stop timeout is 30 s)


class StageTimer(object):
    """Thread-safe per-stage durations in milliseconds, with median / p90 summaries."""

    def __init__(self, stages=STAGES):
        self._lock = threading.Lock()
        # preallocated rings: memory fixed from the first frame (a deque of floats grew by
        # ~3 MB over its first HISTORY frames, which a soak cannot tell from a leak)
        self._samples = collections.OrderedDict(
            (name, np.zeros(HISTORY, np.float64)) for name in stages)
        self._counts = dict((name, 0) for name in stages)
        self._latest = dict((name, 0.0) for name in stages)

    def add(self, stage, seconds):
        ms = seconds * 1000.0
        with self._lock:
            self._samples[stage][self._counts[stage] % HISTORY] = ms
            self._counts[stage] += 1
            self._latest[stage] = ms

    def latest(self):
        """[(stage, last ms)] for the on-screen statistics."""
        with self._lock:
            return [(name, self._latest[name]) for name in self._samples]

    def summary(self):
        """{stage: {"median_ms", "p90_ms", "count"}} over the recorded samples."""
        with self._lock:
            data = [(name, values[:min(self._counts[name], HISTORY)].copy())
                    for name, values in self._samples.items()]
        out = collections.OrderedDict()
        for name, values in data:
            if len(values):
                out[name] = {"median_ms": round(float(np.median(values)), 3),
                             "p90_ms": round(float(np.percentile(values, 90)), 3),
                             "count": len(values)}
            else:
                out[name] = {"median_ms": None, "p90_ms": None, "count": 0}
        return out


class RateMeter(object):
    """Frames per second over the last ``window`` frames: the on-screen, current FPS."""

    def __init__(self, window=30):
        self._times = collections.deque(maxlen=max(int(window), 2))

    def tick(self, now=None):
        """Count one frame (at ``now``, time.monotonic() by default); the current rate."""
        self._times.append(time.monotonic() if now is None else now)
        return self.rate

    @property
    def rate(self):
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


class Processor(object):
    """frame (BGR uint8) -> label map at the model's size: the Python API's own steps
    (edge/segmenter.py), timed per stage."""

    def __init__(self, segmenter, timer, keep_probabilities=False):
        self.segmenter = segmenter
        self.timer = timer
        self.keep_probabilities = keep_probabilities
        self.probabilities = None  # the last output's copy, when a sink needs it

    def process(self, frame):
        """Preprocess (the training function, frame order BGR) into the backend's input
        buffer, infer, labels at the model's size (sinks upscale them when they need to)."""
        t0 = time.monotonic()
        x = self.segmenter.preprocess(frame)
        t1 = time.monotonic()
        probs = self.segmenter.infer(x)
        t2 = time.monotonic()
        labels = self.segmenter.to_labels(probs)
        # a copy: a backend may reuse its output buffer for the next frame
        self.probabilities = probs.copy() if self.keep_probabilities else None
        t3 = time.monotonic()
        self.timer.add("pre", t1 - t0)
        self.timer.add("infer", t2 - t1)
        self.timer.add("post", t3 - t2)
        return labels


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


def run_pipeline(stream, backend, sinks=(), alpha=0.5, max_frames=None, duration=None,
                 stop_event=None, log_every=5.0, visualize="overlay", hidden=(),
                 monitor=None):
    """Run until the source ends, ``max_frames``/``duration`` is reached or ``stop_event``.

    The stream must be started (edge.sources.open_source does that). The sinks are always
    closed, also on Ctrl-C, and before the stream is stopped, so a video is finalized even
    when the source hangs. Returns the summary dict (see :func:`summarize`); the elapsed
    time and FPS cover the frames, not model loading or teardown. ``stream`` may be an
    edge.multisource.MultiStream (several sources); ``hidden`` are label ids the overlay
    leaves undrawn; ``monitor`` (edge/stats.py LiveStats) is attached to the running loop.
    """
    stop_event = stop_event or threading.Event()
    contract = backend.contract
    timer = StageTimer()
    sinks = list(sinks)
    processor = Processor(Segmenter(backend, alpha, owns_backend=False), timer,
                          any(getattr(s, "needs_probabilities", False) for s in sinks))
    render = RenderThread(sinks, contract, timer, alpha, visualize=visualize,
                          hidden=hidden).start()
    if monitor is not None:
        monitor.attach(stream, render, backend)
    state = {"frames": 0, "end_reason": None, "start": time.monotonic(), "end": None,
             "non_finite_frames": 0}
    try:
        _loop(stream, processor, render, timer, state, max_frames, duration, stop_event,
              log_every)
    except KeyboardInterrupt:
        state["end_reason"] = "interrupted (Ctrl-C)"
        LOG.warning("interrupted: finishing outputs")
    finally:
        state["end"] = time.monotonic()
        stop_event.set()  # stopping from here on: a signal must not abandon the drain
        try:
            render.finish()
        finally:
            stream.stop()
    return summarize(state, stream, backend, render, timer, state["end"] - state["start"])


def _loop(stream, processor, render, timer, state, max_frames, duration, stop_event,
          log_every):
    """The inference loop on the caller's thread; records why it ended in ``state``."""
    meter = RateMeter()
    rates = stats.SourceRates()
    next_log = time.monotonic() + log_every
    wait_start = time.monotonic()
    while True:
        reason = _stop_reason(state, max_frames, duration, stop_event, render)
        if reason:
            state["end_reason"] = reason
            return
        frame = stream.get(timeout=0.2)
        if frame is None:
            if stream.finished:
                state["end_reason"] = stream.end_reason or "end of source"
                return
            continue  # a slow live camera: keep counting the wait
        timer.add("capture", time.monotonic() - wait_start)
        if state["frames"] == 0:
            state["start"] = wait_start  # FPS counts from the first frame, not model loading
        labels = processor.process(frame.image)
        state["frames"] += 1
        non_finite = processor.segmenter.non_finite_frames > state["non_finite_frames"]
        state["non_finite_frames"] = processor.segmenter.non_finite_frames
        render.fps = meter.tick()
        result = Result(frame.index, frame.name, frame.image, small_labels=labels,
                        probabilities=processor.probabilities, time=frame.time,
                        source=getattr(frame, "source", 0))
        result.info = stats.frame_info(frame, result.source, timer.latest(), non_finite,
                                       rates)
        render.put(result, stop_event)
        wait_start = time.monotonic()
        if wait_start >= next_log:
            next_log = wait_start + log_every
            _log_progress(state, stream, timer, render.fps, render.sinks)


def _stop_reason(state, max_frames, duration, stop_event, render):
    if stop_event.is_set():
        return "stopped"
    if render.wants_stop:
        return "sink error" if render.error else "stopped from the window"
    if max_frames and state["frames"] >= max_frames:
        return "max frames"
    if duration and time.monotonic() - state["start"] >= duration:
        return "duration"
    return None


def _log_progress(state, stream, timer, fps, sinks=()):
    stages = timer.summary()
    LOG.info("%d frames, %.1f FPS, %d dropped%s | median ms: %s%s | %s", state["frames"], fps,
             stream.dropped, non_finite_note(state["non_finite_frames"]),
             " ".join("{} {:.1f}".format(k, v["median_ms"])
                      for k, v in stages.items() if v["count"]),
             writer_progress(sinks), memory.format_brief(memory.snapshot()))


def non_finite_note(count):
    """``, 3 with NaN/Inf output`` once any frame's model output was not finite."""
    return ", {} with NaN/Inf output".format(count) if count else ""


def writer_progress(sinks):
    """`` | VideoSink queue 3/8 (max 8), waited 12 times (840.0 ms)`` for each writer that
    keeps every frame: a writer falling behind shows while the run goes on, not only at the
    end (its first wait also logs a WARNING, edge/delivery.py)."""
    parts = []
    for sink in sinks:
        if isinstance(sink, delivery.EveryWorker):
            stats = sink.stats()
            parts.append("{} queue {}/{} (max {}), waited {} times ({:.1f} ms)".format(
                sink.name, sink.queue.qsize(), stats["queue_size"], stats["max_queue"],
                stats["waits"], stats["wait_total_ms"]))
    return " | " + "; ".join(parts) if parts else ""


def summarize(state, stream, backend, render, timer, elapsed):
    """The run's summary: counts, FPS, per-stage timings, why it ended, any error."""
    summary = collections.OrderedDict()
    summary["frames"] = state["frames"]
    summary["written"] = render.written
    summary["captured"] = stream.captured
    summary["dropped"] = stream.dropped
    summary["non_finite_frames"] = state["non_finite_frames"]
    summary["reconnects"] = stream.reconnects
    summary["stalls"] = getattr(stream, "stalls", 0)
    summary["skipped_files"] = getattr(stream, "skipped", 0)
    summary["elapsed_s"] = round(elapsed, 3)
    summary["fps"] = round(state["frames"] / elapsed, 3) if elapsed > 0 else 0.0
    summary["end_reason"] = state["end_reason"]
    summary["source"] = stream.description
    summary["backend"] = backend.describe()
    summary["stages"] = timer.summary()
    summary["error"] = render.error or stream.error
    summary["sinks"] = [delivery.sink_stats(sink) for sink in render.sinks]
    if hasattr(stream, "source_summaries"):  # edge.multisource.MultiStream
        summary["sources"] = stream.source_summaries()
    return summary


def format_summary(summary):
    """Human-readable lines for the log."""
    lines = ["{frames} frames in {elapsed_s:.1f} s = {fps:.2f} FPS, {dropped} dropped, "
             "{reconnects} reconnects, ended: {end_reason}".format(**summary)]
    if summary.get("non_finite_frames"):
        lines.append("  {} frames had NaN/Inf in the model output (their labels are "
                     "meaningless): check the model with convert/validate.py".format(
                         summary["non_finite_frames"]))
    if summary.get("skipped_files"):
        lines.append("  {} truncated image files skipped (named in the warnings above): "
                     "replace them".format(summary["skipped_files"]))
    for name, stage in summary["stages"].items():
        if stage["count"]:
            lines.append("  {:<8} median {:7.2f} ms   p90 {:7.2f} ms".format(
                name, stage["median_ms"], stage["p90_ms"]))
    for sink in summary.get("sinks", ()):
        lines.append("  " + format_sink(sink))
    return lines


def format_sink(stats):
    """One log line per sink: frames written, and the producer's waits or superseded frames."""
    line = "{:<12} {:<6} {} written".format(stats["sink"], stats["delivery"],
                                            stats.get("written", "-"))
    if stats.get("kept") is not None and stats["kept"] != stats.get("written"):
        line += " but only {} kept in the file".format(stats["kept"])
    if stats["delivery"] == "every":
        line += ", producer waited {} times ({:.1f} ms in all, median {:.1f} ms), max " \
                "queue {}/{}".format(stats["waits"], stats["wait_total_ms"],
                                     stats["wait_median_ms"], stats["max_queue"],
                                     stats["queue_size"])
    elif stats["delivery"] == "latest":
        line += ", {} superseded by newer frames".format(stats["superseded"])
    return line


def write_summary(summary, path, flag="--summary"):
    """The summary as JSON, written atomically; a failed write is one line naming ``path``."""
    write_text_for_flag(path, json.dumps(summary, indent=2) + "\n", flag)
