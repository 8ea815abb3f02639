"""edge/runtime.py: the host path off the critical loop, and the threads under faults.

The host path: sink workers, the watched-only viewer, --host-only. Real 720p frames (CamVid
street scenes scaled to 1280x720, written with OpenCV), real VideoSink / MaskSink /
MjpegViewer, no model: the benchmark's host-only stand-in returns a fixed label map of the
contract's size. The faults: crashing, stuck and slow sinks, a stalled camera, teardown
time, with a model-free backend on real sinks and files.
"""
import json
import logging
import os
import re
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from edge.benchmarks.standin import HostOnlyStandIn, fixed_labels
from nanoseg.contract import Contract
from nanoseg.errors import NanosegError
from nanoseg.normalization import Normalization
from nanoseg.preprocess import labels_to_frame
from edge.run_summary import write_summary
from edge.stage_timing import RateMeter
from edge.sinks import MaskSink, Sink, VideoSink, ViewerSink
from edge.sources import SourceStream, open_source
from edge.viewer import MjpegViewer
from tests.video_helpers import (BrokenSink, FakeBackend, HangingSlowSink, SlowSink,
                                 StallingCamera, count_frames, folder_stream, run_bounded,
                                 wait_until, write_street_video)

FRAMES = 20


def street_contract():
    return Contract.create(64, 64, ["road", "car"], "softmax",
                           Normalization.named("imagenet"))


@pytest.fixture(scope="module")
def street_720p(tmp_path_factory, camvid_dir):
    path = tmp_path_factory.mktemp("street").joinpath("street720.mp4")
    assert write_street_video(path, camvid_dir, FRAMES) == FRAMES
    return str(path)


class SlowVideoSink(VideoSink):
    """A video writer slower than the loop (a slow encoder on a busy A57)."""

    def write(self, result):
        time.sleep(0.08)
        VideoSink.write(self, result)


class SlowMaskSink(MaskSink):
    def write(self, result):
        time.sleep(0.08)
        MaskSink.write(self, result)


def test_every_frame_reaches_the_file_and_the_mask_folder_when_the_sinks_are_slow(
        street_720p, tmp_path, caplog):
    contract = street_contract()
    out, masks = str(tmp_path / "out.mp4"), str(tmp_path / "masks")
    sinks = [SlowVideoSink(out, 30.0), SlowMaskSink(masks)]
    with caplog.at_level(logging.INFO):
        summary, _ = run_bounded(stream=open_source(street_720p),
                                 backend=HostOnlyStandIn(contract, 0), sinks=sinks,
                                 log_every=0.2)
    assert summary["frames"] == FRAMES and summary["error"] is None
    assert count_frames(out) == FRAMES  # every frame, in a playable file
    names = sorted(os.listdir(masks))
    assert len(names) == FRAMES
    expected = labels_to_frame(fixed_labels(contract), (720, 1280))
    for name in names[:: FRAMES // 4]:
        assert np.array_equal(cv2.imread(os.path.join(masks, name), cv2.IMREAD_UNCHANGED),
                              expected)
    stats = {s["sink"]: s for s in summary["sinks"]}
    for name in ("SlowVideoSink", "SlowMaskSink"):
        assert stats[name]["delivery"] == "every" and stats[name]["written"] == FRAMES
    # the loop outran the first slow sink: it waited (counted, never a silent drop); the
    # mask writer behind it was paced by that wait
    video = stats["SlowVideoSink"]
    assert video["waits"] > 0 and video["wait_total_ms"] > 0 and video["wait_median_ms"] > 0
    assert video["max_queue"] == video["queue_size"]
    # ... and said so while running: one WARNING at the first wait, the waits and the queue
    # depth in the progress lines
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m for m in warnings if "SlowVideoSink is slower" in m] == [
        "the SlowVideoSink is slower than the loop: its queue of 8 frames is full, so the "
        "loop waits for it (every frame is still written)"]
    progress = [r.getMessage() for r in caplog.records if " FPS, " in r.getMessage()]
    assert any(re.search(r"SlowVideoSink queue \d/8 \(max 8\), waited [1-9]\d* times", m)
               for m in progress), progress


def _connect_stream(viewer):
    sock = socket.create_connection(("127.0.0.1", viewer.port), timeout=5.0)
    sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


def test_the_viewer_encodes_nothing_without_a_client_and_at_most_view_fps_with_one(
        street_720p):
    contract = street_contract()
    viewer = MjpegViewer("127.0.0.1", 0, title="test").start()
    idle = ViewerSink(viewer, max_fps=15.0)  # closing the sink closes its viewer
    summary, _ = run_bounded(stream=open_source(street_720p),
                             backend=HostOnlyStandIn(contract, 0), sinks=[idle])
    assert summary["frames"] == FRAMES and summary["error"] is None
    assert idle.encoded == 0 and idle.unwatched == summary["sinks"][0]["written"] > 0
    assert viewer.board.wait_next(0, timeout=0.01)[1] is None  # nothing was published

    viewer = MjpegViewer("127.0.0.1", 0, title="test").start()
    watched = ViewerSink(viewer, max_fps=5.0)
    sock = _connect_stream(viewer)
    try:
        assert wait_until(lambda: viewer.watching)
        started = time.monotonic()
        summary, _ = run_bounded(stream=open_source(street_720p),
                                 backend=HostOnlyStandIn(contract, 20), sinks=[watched])
        took = time.monotonic() - started
        sock.settimeout(5.0)
        assert sock.recv(4096).startswith(b"HTTP/1.0 200")
    finally:
        sock.close()
        viewer.close()
    assert summary["frames"] == FRAMES and summary["error"] is None
    assert 1 <= watched.encoded <= 5.0 * took + 1  # --view-fps 5 over the run
    assert watched.rate_limited + watched.encoded + summary["sinks"][0]["superseded"] == \
        FRAMES


class CrashingWorkerSink(BrokenSink):
    """A sink on its own worker whose third write raises (a bug in a slow sink)."""

    delivery = "every"


def test_a_crashing_worker_ends_the_run_in_one_line_and_the_video_still_plays(
        street_720p, tmp_path):
    out = str(tmp_path / "out.mp4")
    video, broken = VideoSink(out, 30.0), CrashingWorkerSink(fail_at=3)
    summary, _ = run_bounded(stream=open_source(street_720p),
                             backend=HostOnlyStandIn(street_contract(), 30),
                             sinks=[video, broken])
    assert summary["end_reason"] == "sink error" and summary["frames"] < FRAMES
    assert summary["error"] == ("the CrashingWorkerSink failed on frame 2: ValueError: "
                                "unsupported pixel layout (the log has the traceback)")
    assert broken.closed_on == "sink-CrashingWorkerSink"  # closed on its own worker
    assert count_frames(out) == video.frames == summary["written"]


def test_an_unknown_delivery_is_one_line_and_closes_the_sinks_already_started(tmp_path):
    from edge.render_thread import RenderThread
    from edge.stage_timing import StageTimer

    class Sometimes(BrokenSink):
        delivery = "sometimes"

    first, odd = BrokenSink(fail_at=100), Sometimes()
    video = VideoSink(str(tmp_path / "v.mp4"), 30.0)
    with pytest.raises(NanosegError, match="Sometimes declares delivery 'sometimes': use one "
                                           "of inline, every, latest"):
        RenderThread([video, first, odd], street_contract(), StageTimer())
    assert first.closed_on is not None and odd.closed_on is not None


def test_frames_are_preprocessed_into_the_backends_input_array_without_a_copy(street_720p):
    from edge.backends import Backend
    from nanoseg.preprocess import preprocess_image
    from edge.runtime import Processor
    from edge.stage_timing import StageTimer
    from edge.segmenter import Segmenter

    class Recording(Backend):
        def _run(self, batch):
            self.seen = batch
            return np.zeros((1, 64, 64, 3), np.float32)

    contract = street_contract()
    backend = Recording(contract, contract)
    stream = open_source(street_720p)
    try:
        frame = stream.get(timeout=10.0).image
    finally:
        stream.stop()
    labels = Processor(Segmenter(backend), StageTimer()).process(frame)
    assert labels.shape == (64, 64)  # the model's size: the 720p upscale is the sinks' job
    assert np.shares_memory(backend.seen, backend.input_buffer())  # no per-frame array
    assert np.array_equal(backend.seen[0], preprocess_image(frame, contract, "BGR"))
    nchw = Recording(contract, contract.copy(layout="NCHW"))
    assert nchw.input_buffer() is None  # a transpose is needed anyway


# -- the runtime's threads under faults (a model-free backend, real sinks and files) -----
def test_a_crashing_sink_ends_the_run_and_the_video_is_still_finalized(tmp_path, caplog):
    out = str(tmp_path / "out.mp4")
    video = VideoSink(out, 10.0)
    broken = BrokenSink(fail_at=3)
    with caplog.at_level(logging.ERROR):
        summary, _ = run_bounded(stream=folder_stream(tmp_path), backend=FakeBackend(),
                                  sinks=[video, broken])
    assert summary["end_reason"] == "sink error" and summary["frames"] < 20
    assert summary["error"] == ("the BrokenSink failed on frame 2: ValueError: unsupported "
                                "pixel layout (the log has the traceback)")
    assert count_frames(out) == video.frames >= 3  # closed: the mp4 plays
    assert broken.closed_on == "render"  # sinks are closed on the render thread
    tracebacks = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert tracebacks and "BrokenSink failed on frame 2" in tracebacks[0].getMessage()


def test_a_render_thread_stuck_in_a_sink_does_not_block_the_end(tmp_path):
    """finish() gives up after its timeout, reports the stuck sink, closes the others."""
    from edge.render_thread import RenderThread
    from edge.stage_timing import StageTimer
    from edge.sinks import Result

    class Stuck(Sink):
        def __init__(self):
            self.release = threading.Event()
            self.closed = False

        def write(self, result):
            self.release.wait()

        def close(self):
            self.closed = True

    stuck, other = Stuck(), BrokenSink(fail_at=100)
    render = RenderThread([other, stuck], FakeBackend().contract, StageTimer(),
                          finish_timeout=0.5).start()
    image = np.zeros((16, 16, 3), np.uint8)
    stop = threading.Event()
    try:
        for index in range(3):  # one in the sink, two in the queue: the queue is full
            assert render.put(Result(index, "f", image, np.zeros((16, 16), np.uint8)), stop)
        started = time.monotonic()
        render.finish()
        assert time.monotonic() - started < 5
        assert render.error == "the render thread did not finish within 0.5 s (stuck in Stuck)"
        assert other.closed_on == threading.current_thread().name and not stuck.closed
    finally:
        stuck.release.set()
    assert wait_until(lambda: stuck.closed)  # closed by the render thread once it got free


def _render_with(sinks, finish_timeout, frames):
    """A started RenderThread over ``sinks`` that was handed ``frames`` small results."""
    from edge.render_thread import RenderThread
    from edge.stage_timing import StageTimer
    from edge.sinks import Result
    render = RenderThread(sinks, FakeBackend().contract, StageTimer(),
                          finish_timeout=finish_timeout).start()
    image, stop = np.zeros((16, 16, 3), np.uint8), threading.Event()
    for index in range(frames):
        assert render.put(Result(index, "f", image, np.zeros((16, 16), np.uint8)), stop)
    return render


def test_slow_workers_drain_and_close_in_parallel_within_one_deadline():
    """Every worker is told to end first, then all are joined against one deadline: two
    closes of 1.2 s fit in 2 s together (one after the other they would not)."""
    first, second = SlowSink(write_s=0.01, close_s=1.2), SlowSink(write_s=0.01, close_s=1.2)
    render = _render_with([first, second], finish_timeout=2.0, frames=5)
    started = time.monotonic()
    render.finish()
    took = time.monotonic() - started
    assert render.error is None and took < 2.0
    assert first.closed and second.closed and first.written == second.written == 5


def test_a_worker_stuck_in_close_is_named_and_the_others_are_closed():
    hang = threading.Event()
    stuck, other = HangingSlowSink(hang=hang), SlowSink(close_s=0.3)
    try:
        render = _render_with([stuck, other], finish_timeout=1.0, frames=3)
        started = time.monotonic()
        render.finish()
        assert time.monotonic() - started < 3
        assert render.error == ("the HangingSlowSink did not finish within 1 s (stuck in "
                                "close; 0 frames still queued): its file may be incomplete")
        assert other.closed and not stuck.closed and stuck.written == 3
    finally:
        hang.set()
    assert wait_until(lambda: stuck.closed)


def test_a_stalled_camera_finalizes_the_outputs_before_the_stream_is_stopped(tmp_path):
    camera = StallingCamera(stall_after=5)
    stream = SourceStream(camera, stall_timeout=60.0).start()  # the watchdog stays quiet
    events = []
    real_stop = stream.stop

    def stop(*args, **kwargs):
        events.append("stream stopped")
        real_stop(*args, **kwargs)
    stream.stop = stop
    out = str(tmp_path / "stalled.mp4")
    sinks = [VideoSink(out, 10.0), BrokenSink(fail_at=100,
                                               on_close=lambda: events.append("sinks closed"))]
    try:
        summary, took = run_bounded(stream=stream, backend=FakeBackend(), sinks=sinks,
                                     duration=1.0)
        assert events == ["sinks closed", "stream stopped"]
        assert summary["end_reason"] == "duration" and summary["frames"] == 5
        assert count_frames(out) == 5 and took < 10
        assert not camera.connections[0].released  # still inside its read(): not released
    finally:
        camera.unblock.set()
    assert wait_until(lambda: camera.connections[0].released)
    assert not camera.connections[0].released_while_reading


def test_the_watchdog_reconnects_a_stalled_camera_during_a_run():
    camera = StallingCamera(stall_after=4)
    stream = SourceStream(camera, stall_timeout=0.3, backoff=0.01).start()
    try:
        summary, _ = run_bounded(stream=stream, backend=FakeBackend(), max_frames=15)
    finally:
        camera.unblock.set()
    assert summary["end_reason"] == "max frames" and summary["frames"] == 15
    assert summary["stalls"] == 1 and summary["reconnects"] == 1 and summary["error"] is None


class NanEveryOtherFrame(FakeBackend):
    """A backend whose output has a NaN on every second frame (an FP16 overflow)."""

    def __init__(self):
        FakeBackend.__init__(self)
        self.calls = 0

    def infer(self, x):
        self.calls += 1
        probs = FakeBackend.infer(self, x)
        if self.calls % 2 == 0:
            probs[3, 4, 0] = np.nan
        return probs


def test_frames_with_nan_output_are_counted_in_the_progress_and_the_summary(tmp_path, caplog):
    from edge.run_summary import format_summary
    with caplog.at_level(logging.INFO, logger="edge"):
        summary, _ = run_bounded(stream=folder_stream(tmp_path, count=5),
                                 backend=NanEveryOtherFrame(), log_every=0.0)
    assert summary["frames"] == 5 and summary["non_finite_frames"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "frame 2 has NaN/Inf" in warnings[0]
    progress = [r.getMessage() for r in caplog.records if "FPS" in r.getMessage()]
    assert "1 with NaN/Inf output" in progress[1] and "2 with NaN/Inf" in progress[-1]
    assert "NaN/Inf" not in progress[0]
    assert any(line.strip().startswith("2 frames had NaN/Inf")
               for line in format_summary(summary))


def test_a_clean_run_reports_no_nan_frames(tmp_path):
    from edge.run_summary import format_summary
    summary, _ = run_bounded(stream=folder_stream(tmp_path, count=3), backend=FakeBackend())
    assert summary["non_finite_frames"] == 0
    assert not any("NaN" in line for line in format_summary(summary))


def test_elapsed_time_excludes_teardown_and_the_screen_shows_the_recent_rate(tmp_path):
    class SlowClose(Sink):
        def write(self, result):
            pass

        def close(self):
            time.sleep(1.0)  # e.g. a long recording's index being written

    summary, took = run_bounded(stream=folder_stream(tmp_path, count=5),
                                 backend=FakeBackend(), sinks=[SlowClose()])
    assert summary["frames"] == 5 and took >= 1.0
    assert summary["elapsed_s"] < 0.8 and summary["fps"] > 5 / 0.8
    meter = RateMeter(window=5)
    for step in range(10):
        meter.tick(now=step * 0.1)  # 10 FPS for a second...
    for step in range(1, 5):
        rate = meter.tick(now=0.9 + step * 0.5)  # ...then 2 FPS
    assert abs(rate - 2.0) < 1e-9  # the last frames' rate, not the run's average


def test_a_summary_that_cannot_be_written_is_one_line_naming_its_path(tmp_path):
    summary, _ = run_bounded(stream=folder_stream(tmp_path, count=2),
                             backend=FakeBackend())
    path = tmp_path / "run.json"
    write_summary(summary, str(path))
    assert json.loads(path.read_text())["frames"] == 2
    plain = tmp_path / "notes.txt"
    plain.write_text("not a folder")
    with pytest.raises(NanosegError) as info:
        write_summary(summary, str(plain / "run.json"))
    assert str(info.value) == "cannot write --summary {}: Not a directory".format(
        plain / "run.json")


def test_stage_timer_keeps_the_last_history_samples_in_memory_fixed_from_the_start(
        monkeypatch):
    from edge import stage_timing
    monkeypatch.setattr(stage_timing, "HISTORY", 4)
    timer = stage_timing.StageTimer(("infer",))
    allocated = timer._samples["infer"].nbytes
    assert timer.summary()["infer"]["count"] == 0
    for ms in (100, 1, 2, 3, 4, 5):          # the first one falls out of the window
        timer.add("infer", ms / 1000.0)
    summary = timer.summary()["infer"]
    assert summary["count"] == 4 and summary["median_ms"] == pytest.approx(3.5)
    assert timer._samples["infer"].nbytes == allocated


def test_a_writers_waits_are_kept_in_memory_fixed_from_the_start(monkeypatch):
    """The producer's waits for an "every" writer: the median covers the newest
    WAIT_HISTORY of them, the total and the count every wait, in one preallocated ring."""
    from edge import delivery as delivery_module
    monkeypatch.setattr(delivery_module, "WAIT_HISTORY", 4)
    worker = delivery_module.EveryWorker(Sink(), lambda *args, **kwargs: None)
    allocated = worker._waits.nbytes
    assert worker.stats()["wait_median_ms"] == 0.0
    for ms in (100.0, 1.0, 2.0, 3.0, 4.0, 5.0):  # the first one falls out of the median
        worker._count_wait(ms)
    stats = worker.stats()
    assert stats["waits"] == 6 and stats["wait_total_ms"] == pytest.approx(115.0)
    assert stats["wait_median_ms"] == pytest.approx(3.5)
    assert worker._waits.nbytes == allocated
