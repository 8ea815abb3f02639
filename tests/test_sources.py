"""Frame sources: URIs, the CSI pipeline string, credentials, drop and reconnect policies."""
import glob
import logging
import os
import shutil
import threading
import time

import cv2
import numpy as np
import pytest

from edge import sources
from nanoseg.errors import NanosegError
from tests.video_helpers import StallingCamera, drain, wait_until


def test_csi_pipeline_is_what_the_jetson_needs():
    text = sources.csi_pipeline(sensor_id=1, width=1920, height=1080, fps=21, flip=2)
    assert text == (
        "nvarguscamerasrc sensor-id=1 ! "
        "video/x-raw(memory:NVMM), width=(int)1920, height=(int)1080, "
        "framerate=(fraction)21/1, format=(string)NV12 ! "
        "nvvidconv flip-method=2 ! "
        "video/x-raw, width=(int)1920, height=(int)1080, format=(string)BGRx ! "
        "videoconvert ! video/x-raw, format=(string)BGR ! "
        "appsink drop=true max-buffers=1")
    with pytest.raises(NanosegError, match="--flip must be an nvvidconv flip-method 0..7"):
        sources.csi_pipeline(flip=9)


@pytest.mark.parametrize("flip, transposed", [(0, False), (1, True), (2, False), (3, True),
                                              (4, False), (5, True), (6, False), (7, True)])
def test_csi_rotations_and_diagonal_flips_swap_the_output_size(flip, transposed):
    """nvvidconv flip-method 1/3 rotate by 90 and 5/7 transpose: its output is HxW then."""
    text = sources.csi_pipeline(width=1280, height=720, fps=30, flip=flip)
    sensor_caps = ("video/x-raw(memory:NVMM), width=(int)1280, height=(int)720, "
                   "framerate=(fraction)30/1")
    assert sensor_caps in text  # the sensor mode never changes
    out = "width=(int)720, height=(int)1280" if transposed else \
        "width=(int)1280, height=(int)720"
    assert "nvvidconv flip-method={} ! video/x-raw, {}, format=(string)BGRx".format(
        flip, out) in text


def test_rtsp_pipeline_honours_latency_and_uses_the_hardware_decoder_on_jetson():
    jetson = sources.rtsp_pipeline("rtsp://cam/1", latency=50, jetson=True)
    assert jetson.startswith('rtspsrc location="rtsp://cam/1" latency=50 ! rtph264depay')
    assert "nvv4l2decoder" in jetson and jetson.endswith("appsink drop=true max-buffers=1")
    assert "avdec_h264" in sources.rtsp_pipeline("rtsp://cam/1", jetson=False)
    h265 = sources.rtsp_pipeline("rtsp://cam/1", jetson=False, codec="h265")
    assert "! rtph265depay ! h265parse ! avdec_h265 !" in h265 and "264" not in h265
    assert "rtph265depay ! h265parse ! nvv4l2decoder" in sources.rtsp_pipeline(
        "rtsp://cam/1", jetson=True, codec="h265")
    with pytest.raises(NanosegError, match="--rtsp-codec must be one of h264 h265"):
        sources.rtsp_pipeline("rtsp://cam/1", codec="mjpeg")


def test_rtsp_credentials_with_spaces_and_quotes_stay_inside_quoted_values():
    """user-id/user-pw are quoted GStreamer values: a password cannot end the element."""
    uri = "rtsp://ad%20min:p%22a%5Css%20w!rd%40x@10.0.0.5:554/live?ch=1"
    text = sources.rtsp_pipeline(uri, latency=0)
    assert text.startswith('rtspsrc location="rtsp://10.0.0.5:554/live?ch=1" latency=0 '
                           'user-id="ad min" user-pw="p\\"a\\\\ss w!rd@x" ! rtph264depay')
    raw = sources.rtsp_pipeline('rtsp://cam:pa ss"word@host/x')
    assert 'location="rtsp://host/x"' in raw and 'user-pw="pa ss\\"word"' in raw
    assert sources.split_credentials("rtsp://host/x") == ("rtsp://host/x", None, None)
    assert sources.split_credentials("rtsp://u@host/x") == ("rtsp://host/x", "u", None)


def test_redact_uri_hides_user_and_password():
    assert sources.redact_uri("rtsp://admin:hunter2@10.0.0.5:554/live?ch=1") == \
        "rtsp://***:***@10.0.0.5:554/live?ch=1"
    assert sources.redact_uri("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert sources.redact_uri("/data/clip.mp4") == "/data/clip.mp4"
    # an unencoded '/' or '@' in the password, or a password in the query, is hidden too
    assert sources.redact_uri("rtsp://u:a/b@c@host/x") == "rtsp://***:***@host/x"
    assert sources.redact_uri("rtsp://host/live?user=admin&password=hunter2&ch=1") == \
        "rtsp://host/live?user=admin&password=***&ch=1"


def test_rtsp_password_never_reaches_logs_or_errors(caplog):
    """Opening an unreachable RTSP camera fails in one line that names it without secrets."""
    uri = "rtsp://admin:s3cretPW@127.0.0.1:9/stream"
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(NanosegError) as info:
            sources.open_source(uri, reconnect_attempts=1, backoff=0.01)
    assert "s3cretPW" not in str(info.value) and "***:***@127.0.0.1:9" in str(info.value)
    assert caplog.records, "opening a source should log"
    assert all("s3cretPW" not in r.getMessage() for r in caplog.records)
    with pytest.raises(NanosegError) as unknown:
        sources.open_source("rtmp://admin:s3cretPW@host/x")
    assert "s3cretPW" not in str(unknown.value)


def test_unknown_source_lists_the_accepted_forms(tmp_path):
    with pytest.raises(NanosegError) as info:
        sources.open_source(str(tmp_path / "missing.mp4"))
    message = str(info.value)
    assert message.startswith("unknown --source")
    for form in ("csi://N", "v4l2:///dev/videoN", "rtsp://", "image folder", "glob"):
        assert form in message
    with pytest.raises(NanosegError, match="needs a sensor number"):
        sources.open_source("csi://front")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NanosegError, match="holds no images"):
        sources.open_source(str(empty))
    (empty / "sub").mkdir()     # sub-folders are searched too, and hold nothing either
    with pytest.raises(NanosegError, match=r"empty holds no images, nor do its sub-folders: "
                                           r"point --source at a folder of \.jpg/\.png files$"):
        sources.open_source(str(empty))


def test_nested_folder_order_is_the_training_readers_order(nails_dir, tmp_path):
    """'a-b/x' sorts before 'a/x' as a string ('-' < '/'): edge and readers must agree."""
    from nanoseg.datasets import pairing
    folder = tmp_path / "frames"
    image = sorted(os.listdir(os.path.join(nails_dir, "images")))[0]
    for relative in ("a/x", "a-b/x", "a.b/y", "a/b/z", "ab"):
        path = folder.joinpath(*relative.split("/")).with_suffix(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(nails_dir, "images", image), str(path))
    frames = drain(sources.open_source(str(folder)))
    assert [f.name for f in frames] == sorted(pairing.list_by_key(str(folder)))
    assert [f.name for f in frames] == ["a-b/x", "a.b/y", "a/b/z", "a/x", "ab"]


def test_folder_delivers_every_image_sorted_as_bgr(nails_dir):
    folder = os.path.join(nails_dir, "images")
    names = sorted(os.listdir(folder))
    stream = sources.open_source(folder)
    assert not stream.live
    frames = []
    for _ in range(len(names)):  # a slow consumer: files must not drop frames
        frames.append(stream.get(timeout=30))
        time.sleep(0.005)
    assert stream.get(timeout=30) is None and stream.finished
    stream.stop()
    assert [f.name for f in frames] == [os.path.splitext(n)[0] for n in names]
    assert [f.index for f in frames] == list(range(len(names)))
    np.testing.assert_array_equal(frames[3].image,
                                  cv2.imread(os.path.join(folder, names[3]), cv2.IMREAD_COLOR))
    assert stream.dropped == 0 and stream.end_reason == "end of source"


def test_glob_and_video_file(camvid_dir, tmp_path):
    pattern = os.path.join(camvid_dir, "val", "0016E5_0*.png")
    expected = sorted(glob.glob(pattern))
    assert expected
    assert [f.name + ".png" for f in drain(sources.open_source(pattern))] == \
        [os.path.basename(p) for p in expected]
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (480, 360))
    for path in expected[:6]:
        writer.write(cv2.imread(path))
    writer.release()
    frames = drain(sources.open_source(video))
    assert len(frames) == min(6, len(expected))
    assert frames[0].image.shape == (360, 480, 3) and frames[0].image.dtype == np.uint8


def test_looping_a_file_restarts_it(camvid_dir):
    pattern = os.path.join(camvid_dir, "val", "*.png")
    count = len(glob.glob(pattern))
    stream = sources.open_source(pattern, loop=True)
    frames = [stream.get(timeout=30) for _ in range(count + 3)]
    stream.stop()
    assert [f.name for f in frames[count:]] == [f.name for f in frames[:3]]


class FakeCamera(sources.Reader):
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
    stream = sources.SourceStream(camera, reconnect_attempts=1, backoff=0.01).start()
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
    stream = sources.SourceStream(camera, reconnect_attempts=3, backoff=0.01).start()
    with caplog.at_level(logging.INFO):
        got = [stream.get(timeout=10) for _ in range(20)]
    stream.stop()
    assert all(f is not None for f in got)
    assert stream.reconnects == 1 and camera.opens == 2
    assert any("reconnected to fake camera" in r.getMessage() for r in caplog.records)


def test_stop_interrupts_reconnect_backoff():
    camera = FakeCamera(fail_after=1, reopen_ok=False)
    stream = sources.SourceStream(camera, reconnect_attempts=5, backoff=30.0).start()
    assert stream.get(timeout=10) is not None
    started = time.time()
    stopper = threading.Timer(0.2, stream.stop)
    stopper.start()
    assert stream.get(timeout=20) is None
    assert time.time() - started < 10
    assert stream.end_reason == "stopped"


@pytest.mark.parametrize("uri", ["v4l2:///dev/video99", "97", "csi://3"])
def test_absent_camera_is_a_one_line_error(uri):
    """No such device here (or no GStreamer for CSI): one line naming the source."""
    reader = sources.make_reader(uri)
    assert reader.live
    with pytest.raises(NanosegError, match="cannot open {}".format(uri)) as info:
        sources.open_source(uri)
    assert "\n" not in str(info.value)


def test_csi_without_gstreamer_says_exactly_that(monkeypatch):
    """A pip OpenCV has no GStreamer: the message says so, not 'check the device'."""
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: False)
    with pytest.raises(NanosegError) as info:
        sources.open_source("csi://0")
    message = str(info.value)
    assert message.startswith("cannot open csi://0: this OpenCV ")
    assert "built without GStreamer" in message and "JetPack's OpenCV" in message
    assert "check the device" not in message
    monkeypatch.setattr(sources, "opencv_has_gstreamer", lambda: True)
    with pytest.raises(NanosegError, match="cannot open csi://0: OpenCV could not open it"):
        sources.make_reader("csi://0").open()  # GStreamer there: then it is the camera


def test_build_information_flags():
    info = ("  Video I/O:\n    FFMPEG:    YES\n    GStreamer:   NO\n"
            "    v4l/v4l2:  linux/videodev2.h\n")
    assert sources.opencv_build_flag("FFMPEG", info) is True
    assert sources.opencv_build_flag("gstreamer", info) is False
    assert sources.opencv_build_flag("v4l/v4l2", info) is True
    assert sources.opencv_build_flag("DC1394", info) is None
    assert sources.opencv_has_gstreamer() == ("GStreamer:" in cv2.getBuildInformation() and
                                              sources.opencv_build_flag("GStreamer"))


def test_video_file_opens_without_the_ffmpeg_backend(monkeypatch, tmp_path):
    """Files are not forced through CAP_FFMPEG: with no FFmpeg, any backend OpenCV has."""
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (64, 48))
    for value in range(4):
        writer.write(np.full((48, 64, 3), 60 * value, np.uint8))
    writer.release()
    tried = []
    real_capture = cv2.VideoCapture

    def capture(*args):
        tried.append(args[1] if len(args) > 1 else None)
        return real_capture(*args)
    monkeypatch.setattr(sources.cv2, "VideoCapture", capture)
    monkeypatch.setattr(sources, "opencv_build_flag",
                        lambda name, info=None: False if name == "FFMPEG" else None)
    frames = drain(sources.open_source(video))
    assert tried == [cv2.CAP_ANY] and len(frames) == 4


class NoFrameCamera(sources.Reader):
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
    stream = sources.SourceStream(camera, reconnect_attempts=4, backoff=0.5, max_backoff=3.0,
                                  wait=wait).start()
    assert stream.get(timeout=30) is None and stream.finished
    stream.stop()
    assert stream.end_reason == "source lost"
    assert "silent camera was lost and 4 reconnect attempts failed" in stream.error
    assert camera.opens == 5  # the first open plus 4 attempts: not one more
    assert delays == [0.5, 1.0, 2.0, 3.0]  # doubling, capped at max_backoff


class BurstCamera(sources.Reader):
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
    stream = sources.SourceStream(camera, reconnect_attempts=1, backoff=0.25, healthy_frames=10,
                                  wait=lambda s: delays.append(s) and False).start()
    drain(stream)
    assert stream.reconnects == 3 and camera.opens == 5  # every loss after 12 frames is fresh
    assert delays == [0.25] * 4 and stream.end_reason == "source lost"
    few = BurstCamera(burst=3, connections=100)  # 3 frames are not healthy: budget carries
    stream = sources.SourceStream(few, reconnect_attempts=3, backoff=0.25, healthy_frames=10,
                                  wait=lambda s: delays.append(s) and False).start()
    drain(stream)
    assert few.opens == 4 and stream.captured == 12 and stream.end_reason == "source lost"


def test_stalled_read_counts_as_lost_and_reconnects_without_releasing_under_it():
    camera = StallingCamera(stall_after=3)
    stream = sources.SourceStream(camera, stall_timeout=0.3, backoff=0.01).start()
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
    stream = sources.SourceStream(camera, stall_timeout=60.0).start()
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
    stream = sources.SourceStream(camera, stall_timeout=60.0).start()
    assert stream.get(timeout=10).name == "c1"
    time.sleep(0.2)  # now inside read(); it returns 0.3 s into stop()
    threading.Timer(0.3, camera.unblock.set).start()
    stream.stop()
    readers = [t for t in threading.enumerate() if t not in before and t.name == "capture-read"]
    assert not [t for t in readers if t.is_alive()]
    assert camera.connections[0].released and not camera.connections[0].released_while_reading
