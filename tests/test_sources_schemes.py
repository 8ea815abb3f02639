"""edge.sources.schemes: each row of the table of source schemes, through open_source."""
import glob
import logging
import os
import shutil
import time

import cv2
import numpy as np
import pytest

from edge import sources
from edge.sources import flip, rtp, schemes
from nanoseg import platform_info
from nanoseg.errors import NanosegError
from tests.video_helpers import drain


@pytest.fixture
def samples(tmp_path, camvid_dir):
    """A sample --source for every row of the table, and the row it must land on."""
    frames = tmp_path / "frames"
    frames.mkdir()
    image = sorted(glob.glob(os.path.join(camvid_dir, "val", "*.png")))[0]
    shutil.copy(image, str(frames / "a.png"))
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")  # the row is chosen by the path; nothing is opened here
    return {"csi": "csi://0", "v4l2": "v4l2:///dev/video0",
            "rtsp": "rtsp://admin:hunter2@10.0.0.5:554/live", "rtp": "rtp://@:5000",
            "file": str(video), "folder": str(frames),
            "glob": str(frames / "*.png")}


def test_every_row_has_a_sample_that_lands_on_it(samples):
    assert [row.name for row in schemes.SCHEMES] == list(samples)
    for name, uri in samples.items():
        assert schemes.scheme_for(sources.SourceURI(uri)).name == name, uri
    assert schemes.scheme_for(sources.SourceURI("0")).name == "v4l2"  # a device index
    assert sources.ACCEPTED_FORMS == tuple(row.form for row in schemes.SCHEMES)


def test_make_reader_parses_the_uri_once_and_hands_that_object_to_the_row(samples,
                                                                          monkeypatch):
    made = []

    class CountingURI(sources.SourceURI):
        __slots__ = ()

        def __init__(self, uri):
            made.append(uri)
            sources.SourceURI.__init__(self, uri)
    got = []
    monkeypatch.setattr(schemes, "SourceURI", CountingURI)
    monkeypatch.setattr(schemes.SCHEMES[2], "reader", lambda uri, options: got.append(uri))
    schemes.make_reader(samples["rtsp"], latency=70)
    assert made == [samples["rtsp"]] and len(got) == 1
    assert (got[0].user, got[0].password, got[0].location) == (
        "admin", "hunter2", "rtsp://10.0.0.5:554/live")
    assert got[0].shown == "rtsp://***:***@10.0.0.5:554/live"


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


@pytest.mark.parametrize("name", ["missing.mp4", "Missing.MKV", "missing.png"])
def test_a_missing_video_or_image_file_is_file_not_found(tmp_path, name):
    path = str(tmp_path / name)
    with pytest.raises(NanosegError) as info:
        sources.open_source(path)
    assert str(info.value) == "file not found: {}".format(path)


def test_unknown_source_lists_the_accepted_forms(tmp_path):
    with pytest.raises(NanosegError) as info:
        sources.open_source(str(tmp_path / "missing"))
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
    monkeypatch.setattr(platform_info, "opencv_has_gstreamer", lambda: False)
    with pytest.raises(NanosegError) as info:
        sources.open_source("csi://0")
    message = str(info.value)
    assert message.startswith("cannot open csi://0: this OpenCV ")
    assert "built without GStreamer" in message and "JetPack's OpenCV" in message
    assert "check the device" not in message
    monkeypatch.setattr(platform_info, "opencv_has_gstreamer", lambda: True)
    with pytest.raises(NanosegError) as camera:  # GStreamer there: then it is the camera
        sources.make_reader("csi://0", sensor_mode="3264x2464@21").open()
    assert str(camera.value) == (
        "cannot open csi://0: nvarguscamerasrc could not open sensor 0: if a run crashed or "
        "was killed, restart the camera daemon (sudo systemctl restart nvargus-daemon); else "
        "check the ribbon cable and that the camera offers the sensor mode 3264x2464@21 "
        "(--sensor-mode)")


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
    monkeypatch.setattr(cv2, "VideoCapture", capture)
    monkeypatch.setattr(platform_info, "opencv_build_flag",
                        lambda name, info=None: False if name == "FFMPEG" else None)
    frames = drain(sources.open_source(video))
    assert tried == [cv2.CAP_ANY] and len(frames) == 4


@pytest.mark.parametrize("method", range(8))
def test_flip_turns_every_non_csi_source_as_nvvidconv_would(camvid_dir, method):
    """The same flip-method numbers as CSI's nvvidconv, as one OpenCV call on each frame."""
    pattern = os.path.join(camvid_dir, "val", "*.png")
    upright = drain(sources.open_source(pattern))[0].image
    reference = {0: upright, 1: np.rot90(upright, 1), 2: np.rot90(upright, 2),
                 3: np.rot90(upright, -1), 4: upright[:, ::-1], 5: upright[::-1, ::-1]
                 .swapaxes(0, 1), 6: upright[::-1], 7: upright.swapaxes(0, 1)}[method]
    flipped = drain(sources.open_source(pattern, flip=method))[0].image
    assert np.array_equal(flipped, reference)
    assert isinstance(sources.make_reader(pattern, flip=method), flip.FlippedReader) == \
        (method != 0)


def test_csi_flips_on_the_gpu_and_a_bad_flip_is_refused():
    """csi:// takes --flip into its pipeline (nvvidconv), never a second time on the CPU."""
    reader = sources.make_reader("csi://0", flip=2)
    assert not isinstance(reader, flip.FlippedReader)
    with pytest.raises(NanosegError, match="--flip must be a flip-method 0..7"):
        sources.make_reader("csi://0", flip=8)


@pytest.mark.parametrize("loop, passes", [(0, 1), (False, 1), (2, 3), (-1, None),
                                          (True, None)])
def test_loop_n_replays_a_file_n_more_times_and_minus_one_forever(camvid_dir, loop, passes):
    pattern = os.path.join(camvid_dir, "val", "*.png")
    count = len(glob.glob(pattern))
    stream = sources.open_source(pattern, loop=loop)
    if passes is None:  # forever: still going after 5 passes
        frames = [stream.get(timeout=30) for _ in range(count * 5)]
        stream.stop()
        assert all(frame is not None for frame in frames) and stream.replays >= 4
    else:
        frames = drain(stream, limit=count * 5)
        assert len(frames) == count * passes and stream.finished
        assert stream.replays == passes - 1


def test_rtp_input_listens_on_every_interface_or_the_address_given():
    assert rtp.address_and_port("rtp://@:5000") == (None, 5000)
    assert rtp.address_and_port("rtp://239.1.1.1:6000") == ("239.1.1.1", 6000)
    assert sources.SourceURI("rtp://@:5000").shown == "rtp://@:5000"  # nothing to hide
    for bad in ("rtp://@", "rtp://@:0", "rtp://@:70000"):
        with pytest.raises(NanosegError, match="needs a UDP port 1-65535"):
            rtp.address_and_port(bad)
    assert sources.make_reader("rtp://@:5000").live
