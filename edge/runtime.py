"""The live pipeline: capture ∥ (preprocess → infer → postprocess) ∥ render/write.

Three threads joined by bounded hand-offs: the source's capture thread (edge/sources.py),
inference on the *calling* thread (a TensorRT/pycuda context belongs to the thread that made
it) and a render thread feeding the sinks. While the model runs on frame N, frame N+1 is
being captured and frame N-1 drawn/encoded, so end-to-end FPS approaches inference FPS.
Every stage is timed; :func:`run_pipeline` logs the timings periodically and returns a
summary (frames, dropped, fps, per-stage median/p90 ms).
"""
import collections
import json
import logging
import queue
import threading
import time

import numpy as np

from edge import overlay
from edge.contract import (labels_to_frame, preprocess_image, probabilities_to_labels,
                           write_text_atomic)
from edge.errors import NanosegError
from edge.sinks import Result

LOG = logging.getLogger(__name__)
STAGES = ("capture", "pre", "infer", "post", "render")
HISTORY = 20000  # samples kept per stage (hours at camera rates; bounded memory)


class StageTimer(object):
    """Thread-safe per-stage durations in milliseconds, with median / p90 summaries."""

    def __init__(self, stages=STAGES):
        self._lock = threading.Lock()
        self._samples = collections.OrderedDict(
            (name, collections.deque(maxlen=HISTORY)) for name in stages)
        self._latest = dict((name, 0.0) for name in stages)

    def add(self, stage, seconds):
        ms = seconds * 1000.0
        with self._lock:
            self._samples[stage].append(ms)
            self._latest[stage] = ms

    def latest(self):
        """[(stage, last ms)] for the on-screen statistics."""
        with self._lock:
            return [(name, self._latest[name]) for name in self._samples]

    def summary(self):
        """{stage: {"median_ms", "p90_ms", "count"}} over the recorded samples."""
        with self._lock:
            data = [(name, list(values)) for name, values in self._samples.items()]
        out = collections.OrderedDict()
        for name, values in data:
            if values:
                out[name] = {"median_ms": round(float(np.median(values)), 3),
                             "p90_ms": round(float(np.percentile(values, 90)), 3),
                             "count": len(values)}
            else:
                out[name] = {"median_ms": None, "p90_ms": None, "count": 0}
        return out


class Processor(object):
    """frame (BGR uint8) -> label map at the frame's size, with the contract's own steps."""

    def __init__(self, backend, contract, timer):
        self.backend = backend
        self.contract = contract
        self.timer = timer

    def process(self, frame):
        """Preprocess (the training function, frame order BGR), infer, labels, resize back."""
        t0 = time.time()
        x = preprocess_image(frame, self.contract, "BGR")
        t1 = time.time()
        probs = self.backend.infer(x)
        t2 = time.time()
        labels = labels_to_frame(probabilities_to_labels(probs, self.contract), frame.shape)
        t3 = time.time()
        self.timer.add("pre", t1 - t0)
        self.timer.add("infer", t2 - t1)
        self.timer.add("post", t3 - t2)
        return labels


class RenderThread(object):
    """Draws the overlay (once, if any sink shows it) and writes every sink, in order."""

    def __init__(self, sinks, contract, timer, alpha=0.5, queue_size=2):
        self.sinks = list(sinks)
        self.contract = contract
        self.timer = timer
        self.alpha = alpha
        self.palette = overlay.bgr_palette(contract)
        self.needs_render = any(s.needs_render for s in self.sinks)
        self.queue = queue.Queue(maxsize=queue_size)
        self.error = None
        self.written = 0
        self.fps = 0.0
        self._thread = threading.Thread(target=self._run, name="render", daemon=True)

    def start(self):
        self._thread.start()
        return self

    @property
    def wants_stop(self):
        return self.error is not None or any(s.wants_stop for s in self.sinks)

    def put(self, result, stop_event):
        """Hand a result over (blocks while the sinks catch up; gives up on stop/error)."""
        while not stop_event.is_set() and self.error is None:
            try:
                self.queue.put(result, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def finish(self):
        """Drain the queue, stop the thread, close every sink (finalizes files)."""
        self.queue.put(None)
        self._thread.join()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close the others anyway; the first error is reported
                LOG.error("closing %s failed: %s", type(sink).__name__, exc)
                self.error = self.error or "closing {} failed: {}".format(
                    type(sink).__name__, exc)

    def _run(self):
        while True:
            result = self.queue.get()
            if result is None:
                return
            if self.error is not None:
                continue  # keep draining so the producer never blocks
            try:
                self._write(result)
            except NanosegError as exc:
                self.error = str(exc)
                LOG.error("%s", exc)

    def _write(self, result):
        t0 = time.time()
        if self.needs_render:
            result.rendered = overlay.render(result.frame, result.labels, self.contract,
                                             self.palette, self.alpha, self.fps,
                                             self.timer.latest())
        for sink in self.sinks:
            sink.write(result)
        self.written += 1
        self.timer.add("render", time.time() - t0)


def run_pipeline(stream, backend, sinks=(), alpha=0.5, max_frames=None, duration=None,
                 stop_event=None, log_every=5.0):
    """Run until the source ends, ``max_frames``/``duration`` is reached or ``stop_event``.

    The stream must be started (edge.sources.open_source does that); sinks are always closed,
    also on Ctrl-C, so a video is finalized. Returns the summary dict (see :func:`summarize`).
    """
    stop_event = stop_event or threading.Event()
    contract = backend.contract
    timer = StageTimer()
    processor = Processor(backend, contract, timer)
    render = RenderThread(sinks, contract, timer, alpha).start()
    state = {"frames": 0, "end_reason": None, "start": time.time()}
    try:
        _loop(stream, processor, render, timer, state, max_frames, duration, stop_event,
              log_every)
    except KeyboardInterrupt:
        state["end_reason"] = "interrupted (Ctrl-C)"
        LOG.warning("interrupted: finishing outputs")
    finally:
        stream.stop()
        render.finish()
    elapsed = time.time() - state["start"]
    return summarize(state, stream, backend, render, timer, elapsed)


def _loop(stream, processor, render, timer, state, max_frames, duration, stop_event,
          log_every):
    """The inference loop on the caller's thread; records why it ended in ``state``."""
    next_log = time.time() + log_every
    wait_start = time.time()
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
        timer.add("capture", time.time() - wait_start)
        if state["frames"] == 0:
            state["start"] = wait_start  # FPS counts from the first frame, not model loading
        labels = processor.process(frame.image)
        state["frames"] += 1
        render.fps = state["frames"] / max(time.time() - state["start"], 1e-6)
        render.put(Result(frame.index, frame.name, frame.image, labels), stop_event)
        wait_start = time.time()
        if time.time() >= next_log:
            next_log = time.time() + log_every
            _log_progress(state, stream, timer, render.fps)


def _stop_reason(state, max_frames, duration, stop_event, render):
    if stop_event.is_set():
        return "stopped"
    if render.wants_stop:
        return "sink error" if render.error else "stopped from the window"
    if max_frames and state["frames"] >= max_frames:
        return "max frames"
    if duration and time.time() - state["start"] >= duration:
        return "duration"
    return None


def _log_progress(state, stream, timer, fps):
    stages = timer.summary()
    LOG.info("%d frames, %.1f FPS, %d dropped | median ms: %s", state["frames"], fps,
             stream.dropped, " ".join("{} {:.1f}".format(k, v["median_ms"])
                                      for k, v in stages.items() if v["count"]))


def summarize(state, stream, backend, render, timer, elapsed):
    """The run's summary: counts, FPS, per-stage timings, why it ended, any error."""
    summary = collections.OrderedDict()
    summary["frames"] = state["frames"]
    summary["written"] = render.written
    summary["captured"] = stream.captured
    summary["dropped"] = stream.dropped
    summary["reconnects"] = stream.reconnects
    summary["elapsed_s"] = round(elapsed, 3)
    summary["fps"] = round(state["frames"] / elapsed, 3) if elapsed > 0 else 0.0
    summary["end_reason"] = state["end_reason"]
    summary["source"] = stream.description
    summary["backend"] = backend.describe()
    summary["stages"] = timer.summary()
    summary["error"] = render.error or stream.error
    return summary


def format_summary(summary):
    """Human-readable lines for the log."""
    lines = ["{frames} frames in {elapsed_s:.1f} s = {fps:.2f} FPS, {dropped} dropped, "
             "{reconnects} reconnects, ended: {end_reason}".format(**summary)]
    for name, stats in summary["stages"].items():
        if stats["count"]:
            lines.append("  {:<8} median {:7.2f} ms   p90 {:7.2f} ms".format(
                name, stats["median_ms"], stats["p90_ms"]))
    return lines


def write_summary(summary, path):
    """The summary as JSON, written atomically."""
    write_text_atomic(path, json.dumps(summary, indent=2) + "\n")
