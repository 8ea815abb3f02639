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
Every stage is timed (edge/stage_timing.py); :func:`run_pipeline` logs the timings
periodically and returns a summary (edge/run_summary.py: frames, dropped, frames whose model
output had NaN/Inf, fps, per-stage median/p90 ms). This module is the loop and its inference
stage; the render thread is edge/render_thread.py.
"""
import logging
import threading
import time

from edge import stats
from edge.render_thread import RenderThread
from edge.run_summary import non_finite_note, summarize, writer_progress
from edge.segmenter import Segmenter
from edge.sinks import Result
from edge.stage_timing import RateMeter, StageTimer
from nanoseg import memory

LOG = logging.getLogger(__name__)


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
