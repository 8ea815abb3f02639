"""Video and fake-device helpers for tests (Python 3.6 compatible: tests/py36 uses them too).

The fakes stand in for what needs hardware: a camera whose read() blocks like OpenCV's on a
stalled RTSP/CSI stream, a sink that crashes, a backend without a model.
"""
import queue
import signal
import threading
import time

import cv2
import numpy as np

from edge import overlay
from nanoseg import contract as contract_mod
from nanoseg.normalization import Normalization
from edge.sinks import Result, Sink
from edge.sources import ImageListReader, Reader, SourceStream


def decode_frames(path, limit=1000):
    """Every frame (BGR) OpenCV decodes from the video ``path``, at most ``limit``."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while len(frames) < limit:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return frames


def drain(stream, limit=1000):
    """The frames of a started SourceStream until it ends, then stop it; bounded: a source
    that delivers more than ``limit`` frames fails the test instead of running forever."""
    frames = []
    for _ in range(limit + 1):
        frame = stream.get(timeout=30)
        if frame is None:
            break
        frames.append(frame)
    stream.stop()
    assert len(frames) <= limit, "the source delivered more than {} frames".format(limit)
    return frames


def count_frames(path):
    """Frames a reader really decodes from ``path`` (the container's count can lie)."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def write_frames(folder, count, size=(48, 64)):
    """``count`` PNG frames (grey levels) in ``folder``; their paths."""
    paths = []
    for index in range(count):
        path = str(folder.joinpath("frame{:03d}.png".format(index)))
        cv2.imwrite(path, np.full(size + (3,), (index * 37) % 256, np.uint8))
        paths.append(path)
    return paths



def folder_stream(tmp_path, count=20):
    """A started SourceStream over ``count`` frames written under ``tmp_path``/frames."""
    folder = tmp_path / "frames"
    folder.mkdir()
    paths = write_frames(folder, count)
    return SourceStream(ImageListReader(paths, "test frames")).start()

class FakeBackend(object):
    """The backend interface (edge.backends.Backend) without a model: all background."""

    name = "fake"

    def __init__(self, height=16, width=16):
        self.contract = contract_mod.Contract.create(
            height, width, ["thing"], "sigmoid", Normalization.named("scale"))
        self.closed = False

    def infer(self, x):
        return np.zeros((self.contract.height, self.contract.width, 1), np.float32)

    def describe(self):
        return "fake backend"

    def close(self):
        self.closed = True


class BrokenSink(Sink):
    """A sink whose ``fail_at``-th write raises ValueError (a bug in a sink or a driver)."""

    def __init__(self, fail_at=3, on_close=None):
        self.fail_at = fail_at
        self.writes = 0
        self.on_close = on_close
        self.closed_on = None

    def write(self, result):
        self.writes += 1
        if self.writes >= self.fail_at:
            raise ValueError("unsupported pixel layout\nsecond line of detail")

    def close(self):
        self.closed_on = threading.current_thread().name
        if self.on_close is not None:
            self.on_close()


class SlowSink(Sink):
    """An "every" sink (own worker, every frame) that takes ``write_s`` per frame and
    ``close_s`` to close (a long recording's index being written); ``hang`` (an Event)
    makes close() wait for it instead: a sink stuck in a driver call."""

    delivery = "every"

    def __init__(self, write_s=0.0, close_s=0.0, hang=None):
        self.write_s = write_s
        self.close_s = close_s
        self.hang = hang
        self.written = 0
        self.closed = False

    def write(self, result):
        time.sleep(self.write_s)
        self.written += 1

    def close(self):
        if self.hang is not None:
            self.hang.wait(30)
        time.sleep(self.close_s)
        self.closed = True


class HangingSlowSink(SlowSink):
    """A SlowSink with its own class name, so an error naming it is unambiguous."""


class Connection(object):
    """One fake capture handle; records whether it was released while a read was inside it."""

    def __init__(self, number):
        self.number = number
        self.reading = False
        self.released = False
        self.released_while_reading = False

    def release(self):
        self.released = True
        self.released_while_reading = self.reading


class StallingCamera(Reader):
    """Like cv2.VideoCapture on a stalled RTSP/CSI stream: read() blocks with no end-of-stream.

    Connection 1 serves ``stall_after`` frames and then blocks until ``unblock`` is set;
    later connections serve frames forever. detach() hands the connection over as
    edge.sources.CaptureReader does.
    """

    live = True
    description = "stalling camera"

    def __init__(self, stall_after=3, size=(24, 32)):
        self.stall_after = stall_after
        self.size = size
        self.unblock = threading.Event()
        self.connections = []
        self.current = None
        self.served = 0
        self.closed_while_reading = False

    def open(self):
        self.current = Connection(len(self.connections) + 1)
        self.connections.append(self.current)
        self.served = 0

    def read(self):
        connection = self.current
        if connection is None:
            return None
        connection.reading = True
        try:
            if connection.number == 1 and self.served >= self.stall_after:
                self.unblock.wait()
                return None
            self.served += 1
            time.sleep(0.005)
            return "c{}".format(connection.number), np.zeros(self.size + (3,), np.uint8)
        finally:
            connection.reading = False

    def detach(self):
        connection, self.current = self.current, None
        return connection

    def close(self):
        connection, self.current = self.current, None
        if connection is not None:
            self.closed_while_reading |= connection.reading
            connection.release()


def wait_until(condition, timeout=5.0):
    """True once ``condition()`` holds, False after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


class LineReader(object):
    """A process's stderr lines, read on a thread: waiting for a line has a timeout."""

    def __init__(self, stream):
        self._lines = queue.Queue()
        self._seen = []
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream):
        for line in iter(stream.readline, ""):
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text, timeout):
        """Read until a line holds ``text``; fails after ``timeout`` s or at end of output."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "no {!r} within {} s:\n{}".format(
                text, timeout, "".join(self._seen[-30:]))
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            assert line is not None, "the process ended before {!r}:\n{}".format(
                text, "".join(self._seen[-30:]))
            self._seen.append(line)
            if text in line:
                return line

    def rest(self, timeout):
        """Everything read, once the stream ended (or ``timeout`` s passed)."""
        self._thread.join(timeout)
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self._seen.append(line)
        return "".join(self._seen)


def default_sigint():
    """preexec_fn of a child: Ctrl-C raises KeyboardInterrupt even if our parent ignores
    SIGINT (a child inherits SIG_IGN, and Python then installs no handler of its own)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_bounded(timeout=120, **kwargs):
    """run_pipeline(**kwargs) on a thread: a deadlock fails the test instead of hanging it.

    Returns (summary, seconds it took).
    """
    from edge.runtime import run_pipeline
    out = {}

    def target():
        out["summary"] = run_pipeline(**kwargs)
    thread = threading.Thread(target=target, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "run_pipeline did not return within {} s".format(timeout)
    return out["summary"], time.monotonic() - started


def rendered_results(count, size=(240, 320)):
    """``count`` Results whose overlay is drawn by edge.overlay, as the runtime draws it.

    A gradient scene with a square (the "class") that moves 16 px per frame along three lanes
    (48 distinct positions at 320x240), so each frame differs clearly from its neighbours:
    a decoded frame matches exactly one of them.
    """
    height, width = size
    contract = contract_mod.Contract.create(16, 16, ["thing"], "sigmoid",
                                            Normalization.named("scale"))
    palette = overlay.bgr_palette(contract)
    ramp = np.linspace(40, 200, width, dtype=np.float32)
    base = np.dstack([np.tile(ramp, (height, 1))] * 3).astype(np.uint8)
    results = []
    for index in range(count):
        frame = base.copy()
        lane, x = divmod(16 * index, width - 64)
        y = 8 + 76 * (lane % ((height - 8) // 76))
        labels = np.zeros((height, width), np.uint8)
        labels[y:y + 64, x:x + 64] = 1
        frame[labels == 1] = (250, 250, 250)
        result = Result(index, "synthetic", frame, labels)
        result.rendered = overlay.render(frame, labels, contract, palette, 0.5)
        results.append(result)
    return results


def write_street_video(path, camvid_dir, count, size=(1280, 720), fps=30.0):
    """An mp4 of ``count`` real CamVid street frames (480x360, sorted by name: one sequence)
    scaled to ``size`` (default 720p) with OpenCV; the frame count really decoded."""
    import glob
    import os
    names = sorted(glob.glob(os.path.join(str(camvid_dir), "train", "*.png")))
    names = (names * (count // max(len(names), 1) + 1))[:count]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for name in names:
        frame = cv2.imread(name, cv2.IMREAD_COLOR)
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
    writer.release()
    return count_frames(path)
