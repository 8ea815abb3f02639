"""Frame sources: URIs, the CSI pipeline string, credentials, drop and reconnect policies."""
import glob
import logging
import os
import threading
import time

import cv2
import numpy as np
import pytest

from edge import sources
from edge.errors import NanosegError


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


def test_rtsp_pipeline_honours_latency_and_uses_the_hardware_decoder_on_jetson():
    jetson = sources.rtsp_pipeline("rtsp://cam/1", latency=50, jetson=True)
    assert jetson.startswith("rtspsrc location=rtsp://cam/1 latency=50 ! rtph264depay")
    assert "nvv4l2decoder" in jetson and jetson.endswith("appsink drop=true max-buffers=1")
    assert "avdec_h264" in sources.rtsp_pipeline("rtsp://cam/1", jetson=False)


def test_redact_uri_hides_user_and_password():
    assert sources.redact_uri("rtsp://admin:hunter2@10.0.0.5:554/live?ch=1") == \
        "rtsp://***:***@10.0.0.5:554/live?ch=1"
    assert sources.redact_uri("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert sources.redact_uri("/data/clip.mp4") == "/data/clip.mp4"


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


def _drain(stream):
    frames = []
    while True:
        frame = stream.get(timeout=30)
        if frame is None:
            break
        frames.append(frame)
    stream.stop()
    return frames


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
    assert [f.name + ".png" for f in _drain(sources.open_source(pattern))] == \
        [os.path.basename(p) for p in expected]
    video = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 5.0, (480, 360))
    for path in expected[:6]:
        writer.write(cv2.imread(path))
    writer.release()
    frames = _drain(sources.open_source(video))
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
