"""edge.sources.v4l2 and v4l2_formats: what a USB camera offers, the format it is read in.

The listings are v4l2-ctl's own output in both its layouts (v4l-utils 1.14 on JetPack 4.6,
1.22 on Debian 12), for a camera whose YUYV gives 9 fps at 720p and MJPEG 60. The GStreamer
chains these choices build run for real in tests/gst/test_v4l2_pipeline.py.
"""
import os
import stat

import pytest

from edge.sources import SourceOptions, SourceURI, make_reader, v4l2, v4l2_formats
from nanoseg import platform_info
from nanoseg.errors import NanosegError

NEW_LISTING = """ioctl: VIDIOC_ENUM_FMT
\tType: Video Capture

\t[0]: 'MJPG' (Motion-JPEG, compressed)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.017s (60.000 fps)
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t[1]: 'YUYV' (YUYV 4:2:2)
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.111s (9.000 fps)
\t[2]: 'H264' (H.264, compressed)
\t\tSize: Discrete 1920x1080
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t[3]: 'NV12' (Y/UV 4:2:0)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.033s (30.000 fps)
"""
OLD_LISTING = """ioctl: VIDIOC_ENUM_FMT
\tIndex       : 0
\tType        : Video Capture
\tPixel Format: 'YUYV'
\tName        : YUYV 4:2:2
\t\tSize: Discrete 640x480
\t\t\tInterval: Discrete 0.033s (30.000 fps)
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.111s (9.000 fps)

\tIndex       : 1
\tType        : Video Capture
\tPixel Format: 'MJPG' (compressed)
\tName        : Motion-JPEG
\t\tSize: Discrete 1280x720
\t\t\tInterval: Discrete 0.017s (60.000 fps)
\t\t\tInterval: Discrete 0.033s (30.000 fps)
"""
Mode = v4l2_formats.Mode


def test_both_v4l2_ctl_layouts_parse_to_the_same_modes():
    new = v4l2_formats.parse_formats(NEW_LISTING)
    assert new == [Mode("mjpeg", 1280, 720, 60.0), Mode("mjpeg", 1280, 720, 30.0),
                   Mode("mjpeg", 640, 480, 30.0), Mode("yuyv", 640, 480, 30.0),
                   Mode("yuyv", 1280, 720, 9.0), Mode("h264", 1920, 1080, 30.0)]  # no NV12
    old = v4l2_formats.parse_formats(OLD_LISTING)
    assert sorted(old) == sorted(m for m in new if m.codec != "h264" and m != Mode(
        "mjpeg", 640, 480, 30.0))


@pytest.mark.parametrize("size, fps, wanted, chosen", [
    ((1280, 720), 30, "auto", "mjpeg"),   # YUYV gives 9 fps at 720p: MJPEG
    ((1280, 720), 60, "auto", "mjpeg"),
    ((640, 480), 30, "auto", "yuyv"),     # both give it: the one with nothing to decode
    ((1920, 1080), 30, "auto", "h264"),
    ((1280, 720), 8, "yuyv", "yuyv"),
    ((640, 480), 30, "mjpeg", "mjpeg")])
def test_auto_picks_the_cheapest_format_that_gives_the_asked_mode(size, fps, wanted, chosen):
    modes = v4l2_formats.parse_formats(NEW_LISTING)
    assert v4l2_formats.choose_codec(modes, size[0], size[1], fps, wanted) == chosen


def test_a_mode_the_camera_lacks_is_one_line_listing_what_it_offers():
    modes = v4l2_formats.parse_formats(NEW_LISTING)
    offers = ("it offers yuyv 640x480@30, 1280x720@9; mjpeg 1280x720@60/30, 640x480@30; "
              "h264 1920x1080@30")
    with pytest.raises(NanosegError) as auto:
        v4l2_formats.choose_codec(modes, 1920, 1080, 60, device="/dev/video0")
    assert str(auto.value) == ("/dev/video0 cannot give 1920x1080 at 60 fps; " + offers +
                               ": choose one with --width/--height/--fps")
    with pytest.raises(NanosegError) as yuyv:
        v4l2_formats.choose_codec(modes, 1280, 720, 30, "yuyv", device="/dev/video0")
    assert str(yuyv.value).startswith("/dev/video0 cannot give 1280x720 at 30 fps as yuyv; ")
    assert str(yuyv.value).endswith("--width/--height/--fps/--input-codec")


@pytest.fixture
def fake_v4l2_ctl(tmp_path, monkeypatch):
    """A v4l2-ctl on PATH that prints NEW_LISTING and records its arguments."""
    calls = tmp_path / "calls.txt"
    script = tmp_path / "bin" / "v4l2-ctl"
    script.parent.mkdir()
    listing = tmp_path / "listing.txt"
    listing.write_text(NEW_LISTING)
    script.write_text("#!/bin/sh\necho \"$@\" >> {}\ncat {}\n".format(calls, listing))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(script.parent) + os.pathsep + os.environ["PATH"])
    return calls


def test_the_reader_asks_the_camera_and_opens_the_chosen_format(fake_v4l2_ctl, monkeypatch):
    monkeypatch.setattr(platform_info, "opencv_has_gstreamer", lambda: True)
    monkeypatch.setattr(platform_info, "is_jetson", lambda: True)
    how, pipeline, codec = v4l2.plan(SourceURI("1"), SourceOptions(1280, 720, 30))
    assert fake_v4l2_ctl.read_text().split() == ["-d", "/dev/video1", "--list-formats-ext"]
    assert (how, codec) == ("gstreamer", "mjpeg")
    assert "image/jpeg, width=(int)1280, height=(int)720, framerate=(fraction)30/1 ! " \
           "jpegparse ! nvv4l2decoder mjpeg=1" in pipeline
    assert make_reader("1", width=1280, height=720, fps=30).live
    with pytest.raises(NanosegError, match="/dev/video1 cannot give 1280x720 at 30 fps as yuyv"):
        make_reader("1", width=1280, height=720, fps=30, input_codec="yuyv")


def test_without_v4l2_ctl_or_gstreamer_opencv_is_asked_for_the_format(monkeypatch):
    unknown = lambda device: None  # noqa: E731  no v4l2-ctl
    options = SourceOptions(640, 480, 30)
    assert v4l2.plan(SourceURI("v4l2:///dev/video7"), options, unknown) == (
        "opencv", "MJPG", "auto")
    monkeypatch.setattr(platform_info, "opencv_has_gstreamer", lambda: False)
    known = lambda device: v4l2_formats.parse_formats(NEW_LISTING)  # noqa: E731
    assert v4l2.plan(SourceURI("0"), options, known) == ("opencv", "YUYV", "yuyv")
    with pytest.raises(NanosegError, match="--input-codec h264 needs an OpenCV with GStreamer"):
        v4l2.plan(SourceURI("0"), SourceOptions(input_codec="h264"), unknown)
    assert v4l2.device_path(3) == "/dev/video3" and v4l2.device_path("/dev/v") == "/dev/v"
