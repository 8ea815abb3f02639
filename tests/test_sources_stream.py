"""edge.sources.stream: the capture thread's drop, reconnect, stall and stop policies."""
import logging
import threading
import time

import numpy as np

from edge.sources import Reader, SourceStream
from nanoseg.errors import NanosegError
from tests.video_helpers import StallingCamera, drain, wait_until


class FakeCamera(Reader):
    """A live camera producing numbered frames as fast as it can; fails after ``fail_after``."""

    live = True
    description = "fake camera"

    def __init__(self, fail_after=None, reopen_ok=True):
        self.count = 0
        self.opens = 0
        self.fail_after = fail_after
        self.reopen_ok = reopen_ok

    def open(self):
        self.opens += 1
        if self.opens > 1 and not self.reopen_ok:
            raise NanosegError("cannot open fake camera: unplugged")
        if self.opens > 1:
            self.fail_after = None

    def read(self):
        if self.fail_after is not None and self.count >= self.fail_after:
            return None
        self.count += 1
        time.sleep(0.002)
        return "f", np.full((4, 4, 3), self.count % 256, np.uint8)


def test_live_source_keeps_the_latest_frame_and_counts_drops():
    camera = FakeCamera(fail_after=300, reopen_ok=False)
    stream = SourceStream(camera, reconnect_attempts=1, backoff=0.01).start()
    taken = []
    while True:
        frame = stream.get(timeout=10)
        if frame is None:
            break
        taken.append(frame.index)
        time.sleep(0.02)  # a consumer 10x slower than the camera
    stream.stop()
    assert stream.dropped > 0
    assert len(taken) + stream.dropped == stream.captured == 300
    assert taken == sorted(taken) and taken[-1] == 299  # the newest frame is never lost


def test_lost_camera_reconnects_with_backoff_and_resumes(caplog):
    camera = FakeCamera(fail_after=5, reopen_ok=True)
    stream = SourceStream(camera, reconnect_attempts=3, backoff=0.01).start()
    with caplog.at_level(logging.INFO):
        got = [stream.get(timeout=10) for _ in range(20)]
    stream.stop()
    assert all(f is not None for f in got)
    assert stream.reconnects == 1 and camera.opens == 2
    assert any("reconnected to fake camera" in r.getMessage() for r in caplog.records)


def test_stop_interrupts_reconnect_backoff():
    camera = FakeCamera(fail_after=1, reopen_ok=False)
    stream = SourceStream(camera, reconnect_attempts=5, backoff=30.0).start()
    assert stream.get(timeout=10) is not None
    started = time.time()
    stopper = threading.Timer(0.2, stream.stop)
    stopper.start()
    assert stream.get(timeout=20) is None
    assert time.time() - started < 10
    assert stream.end_reason == "stopped"


class NoFrameCamera(Reader):
    """Opens every time but never delivers a frame (a camera that is there but broken)."""

    live = True
    description = "silent camera"

    def __init__(self):
        self.opens = 0

    def open(self):
        self.opens += 1

    def read(self):
        time.sleep(0.001)
        return None


def test_opens_without_frames_use_up_the_reconnect_budget_with_growing_backoff():
    delays = []

    def wait(seconds):  # the back-off sleep, recorded; ends a runaway loop after 20 calls
        delays.append(seconds)
        return len(delays) > 20
    camera = NoFrameCamera()
    stream = SourceStream(camera, reconnect_attempts=4, backoff=0.5, max_backoff=3.0,
                                  wait=wait).start()
    assert stream.get(timeout=30) is None and stream.finished
    stream.stop()
    assert stream.end_reason == "source lost"
    assert "silent camera was lost and 4 reconnect attempts failed" in stream.error
    assert camera.opens == 5  # the first open plus 4 attempts: not one more
    assert delays == [0.5, 1.0, 2.0, 3.0]  # doubling, capped at max_backoff


class BurstCamera(Reader):
    """``burst`` frames per connection, ``connections`` times; then it cannot be opened."""

    live = True
    description = "burst camera"

    def __init__(self, burst, connections):
        self.burst = burst
        self.connections = connections
        self.opens = 0
        self.served = 0

    def open(self):
        self.opens += 1
        if self.opens > self.connections:
            raise NanosegError("cannot open burst camera: unplugged")
        self.served = 0

    def read(self):
        if self.served >= self.burst:
            raise OSError("device disconnected")
        self.served += 1
        return "f", np.full((4, 4, 3), self.opens, np.uint8)


def test_reconnect_budget_starts_afresh_only_after_frames_flowed():
    delays = []
    camera = BurstCamera(burst=12, connections=4)
    stream = SourceStream(camera, reconnect_attempts=1, backoff=0.25, healthy_frames=10,
                                  wait=lambda s: delays.append(s) and False).start()
    drain(stream)
    assert stream.reconnects == 3 and camera.opens == 5  # every loss after 12 frames is fresh
    assert delays == [0.25] * 4 and stream.end_reason == "source lost"
    few = BurstCamera(burst=3, connections=100)  # 3 frames are not healthy: budget carries
    stream = SourceStream(few, reconnect_attempts=3, backoff=0.25, healthy_frames=10,
                                  wait=lambda s: delays.append(s) and False).start()
    drain(stream)
    assert few.opens == 4 and stream.captured == 12 and stream.end_reason == "source lost"


def test_stalled_read_counts_as_lost_and_reconnects_without_releasing_under_it():
    camera = StallingCamera(stall_after=3)
    stream = SourceStream(camera, stall_timeout=0.3, backoff=0.01).start()
    try:
        names = []
        deadline = time.monotonic() + 20
        while "c2" not in names and time.monotonic() < deadline:
            frame = stream.get(timeout=1)
            if frame is not None:
                names.append(frame.name)
        assert names[:3] == ["c1"] * 3 and "c2" in names, names
        assert stream.stalls == 1 and stream.reconnects == 1
        first = camera.connections[0]
        assert first.reading and not first.released  # its read() is still stuck: untouched
        camera.unblock.set()  # the stuck read returns at last: then the handle is released
        assert wait_until(lambda: first.released)
        assert not first.released_while_reading
    finally:
        camera.unblock.set()
        stream.stop()
    assert camera.connections[1].released and not camera.closed_while_reading


def test_stop_returns_while_a_read_is_blocked_and_releases_after_it():
    camera = StallingCamera(stall_after=1)
    stream = SourceStream(camera, stall_timeout=60.0).start()
    assert stream.get(timeout=10).name == "c1"
    time.sleep(0.2)  # now blocked inside read()
    started = time.monotonic()
    stream.stop()
    assert time.monotonic() - started < 3.0
    assert stream.get(timeout=5) is None and stream.finished
    connection = camera.connections[0]
    assert connection.reading and not connection.released
    camera.unblock.set()
    assert wait_until(lambda: connection.released)
    assert not connection.released_while_reading
    assert len(camera.connections) == 1  # stopping never reconnects


def test_stop_waits_for_a_read_that_returns_soon_so_no_thread_is_left_inside_opencv():
    """A process that exits while a thread is inside OpenCV's read() can abort ("FATAL:
    exception not rethrown"): stop() gives a running read READ_RETURN_WAIT to come back."""
    before = set(threading.enumerate())
    camera = StallingCamera(stall_after=1)
    stream = SourceStream(camera, stall_timeout=60.0).start()
    assert stream.get(timeout=10).name == "c1"
    time.sleep(0.2)  # now inside read(); it returns 0.3 s into stop()
    threading.Timer(0.3, camera.unblock.set).start()
    stream.stop()
    readers = [t for t in threading.enumerate() if t not in before and t.name == "capture-read"]
    assert not [t for t in readers if t.is_alive()]
    assert camera.connections[0].released and not camera.connections[0].released_while_reading


def _video(path, count=90):
    """A real 90-frame mp4 (mp4v, 320x240) of tests/video_helpers' moving square."""
    import cv2
    from tests.video_helpers import rendered_results
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (320, 240))
    for result in rendered_results(count):
        writer.write(result.rendered)
    writer.release()
    return path


def _corrupt_the_middle(path):
    """Zero 30 %..60 % of the file: the index (at the end) still declares every frame."""
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    start, end = len(data) * 3 // 10, len(data) * 6 // 10
    data[start:end] = bytes(end - start)
    with open(path, "wb") as handle:
        handle.write(bytes(data))


def test_a_whole_video_file_ends_quietly_after_every_frame(tmp_path):
    from edge.sources import open_source
    stream = open_source(_video(str(tmp_path / "whole.mp4")))
    assert len(drain(stream)) == 90
    assert stream.end_reason == "end of source" and stream.error is None


def test_a_video_corrupt_in_the_middle_is_an_error_naming_the_frame_reached(tmp_path):
    from edge.runtime import run_pipeline
    from edge.sources import open_source
    from tests.video_helpers import FakeBackend
    path = _video(str(tmp_path / "corrupt.mp4"))
    _corrupt_the_middle(path)
    summary = run_pipeline(open_source(path), FakeBackend())
    assert 0 < summary["frames"] < 90
    assert summary["error"] == "{} stopped decoding at frame {} of the 90 its container " \
        "declares: the file is damaged; re-encode or replace it".format(path, summary["frames"])
    assert summary["end_reason"] == "error"
