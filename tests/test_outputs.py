"""--output in this venv: URIs, pipeline strings, one-line errors, the software fallback.

pip's OpenCV has no GStreamer, which is exactly the case to check here: an .mp4 falls back
to OpenCV's own writer and rtp:// / rtsp:// say what to install. The GStreamer side runs for
real in tests/gst (tests/test_gst.py).
"""
import os

import cv2
import numpy as np
import pytest

from edge import gst, outputs, run_camera
from edge.outputs import schemes as output_schemes
from nanoseg.errors import NanosegError
from edge.run_camera import parse_args
from edge.sinks import MaskSink, VideoSink, ViewerSink
from jetson import check_platform
from tests.video_helpers import count_frames, rendered_results

ALL = lambda name: True  # noqa: E731  every element present


# A sample of every row of the table, and what it must parse to.
ROW_SAMPLES = [
    ("h264-file", "runs/Overlay.MKV", {"scheme": "file", "path": "runs/Overlay.MKV",
                                       "extension": ".mkv", "host": None, "port": None}),
    ("video-file", "overlay.avi", {"scheme": "file", "path": "overlay.avi",
                                   "extension": ".avi"}),
    ("images", "shots/out_%05d.JPG", {"scheme": "file", "path": "shots/out_%05d.JPG",
                                      "extension": ".jpg"}),
    ("rtp", "rtp://192.168.1.10:5000", {"scheme": "rtp", "host": "192.168.1.10",
                                        "port": 5000, "bad_port": False}),
    ("rtsp", "RTSP://@:8600/live/", {"scheme": "rtsp", "host": None, "port": 8600,
                                     "name": "live", "path": "/live/"}),
    ("viewer", "http://@:8080/", {"scheme": "http", "host": None, "port": 8080}),
    ("display", "display://0", {"scheme": "display"}),
    ("masks", "masks://runs/masks", {"scheme": "masks"}),
]


@pytest.mark.parametrize("name, uri, expected", ROW_SAMPLES)
def test_each_output_row_parses_its_uri_once_and_recognises_it(name, uri, expected):
    parsed = outputs.OutputURI(uri)
    fields = parsed.fields()
    assert dict((key, fields[key]) for key in expected) == expected
    assert outputs.scheme_for(parsed).name == name
    assert [row.name for row in outputs.OUTPUTS if row.accepts(parsed)] == [name]


def test_every_row_has_a_sample_and_the_rows_open_what_they_parsed(monkeypatch):
    assert [name for name, _, _ in ROW_SAMPLES] == [row.name for row in outputs.OUTPUTS]
    made, opened = [], []

    class CountingURI(outputs.OutputURI):
        __slots__ = ()

        def __init__(self, uri):
            made.append(uri)
            outputs.OutputURI.__init__(self, uri)
    monkeypatch.setattr(output_schemes, "OutputURI", CountingURI)
    row = outputs.output_scheme("rtp")
    monkeypatch.setattr(row, "open", lambda uri, options: opened.append((uri, options)))
    outputs.open_output("rtp://10.0.0.7:5000", fps=12.0, bitrate_kbps=900)
    assert made == ["rtp://10.0.0.7:5000"]
    (uri, options), = opened
    assert (uri.host, uri.port, options.fps, options.bitrate_kbps, options.flag) == (
        "10.0.0.7", 5000, 12.0, 900, "--output")


def test_output_help_lists_every_row(capsys):
    text = outputs.output_help()
    for row in outputs.OUTPUTS:
        assert row.help in text
    assert text.startswith("send the overlay to FILE.mp4|.mkv (H.264/H.265 through GStreamer")
    assert text.endswith(" or masks://DIR (a label-id PNG per frame); repeatable")
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert " ".join(text.split()) in shown  # run_camera --help prints it


def test_save_video_is_the_video_file_row_whatever_the_extension(tmp_path):
    """--save-video FILE.mp4 stays OpenCV's software writer, and its errors say --save-video."""
    sink = outputs.open_output(str(tmp_path / "x.mp4"), 20.0, scheme="video-file",
                               flag="--save-video", exists=ALL)
    assert type(sink) is VideoSink and sink.flag == "--save-video"
    sink.close()
    with pytest.raises(NanosegError, match="^--save-video folder .* does not exist"):
        outputs.open_output(str(tmp_path / "missing" / "x.mkv"), scheme="video-file",
                            flag="--save-video")


def test_uri_mistakes_are_one_line_errors(tmp_path):
    cases = [("rtp://127.0.0.1", "needs a port"), ("rtp://:5000", "needs a host"),
             ("rtp://127.0.0.1:99999", "needs a port"), ("rtsp://@:8554", "stream name"),
             ("udp://127.0.0.1:5000", "unknown kind"),
             (str(tmp_path / "noext"), "has no extension"),
             (str(tmp_path / "missing" / "x.mp4"), "does not exist")]
    for uri, message in cases:
        with pytest.raises(NanosegError, match=message) as info:
            outputs.open_output(uri, exists=ALL)
        assert "\n" not in str(info.value), uri


def test_streams_need_an_opencv_with_gstreamer():
    """This venv's pip OpenCV has none: rtp:// and rtsp:// say so and how to fix it."""
    for uri in ("rtp://127.0.0.1:5000", "rtsp://@:8554/live"):
        with pytest.raises(NanosegError, match="needs an OpenCV built with GStreamer"):
            outputs.open_output(uri, exists=ALL)


def test_mp4_without_gstreamer_falls_back_to_the_software_writer(tmp_path, caplog):
    path = str(tmp_path / "overlay.mp4")
    with caplog.at_level("WARNING"):
        sink = outputs.open_output(path, fps=20, exists=ALL)
    assert type(sink) is VideoSink
    assert "needs an OpenCV built with GStreamer" in caplog.text
    assert "software writer instead" in caplog.text
    for result in rendered_results(7):
        sink.write(result)
    sink.close()
    assert count_frames(path) == 7


def test_the_fallback_writer_names_the_flag_the_user_gave(tmp_path):
    """--output x.mp4 through OpenCV's writer: its errors say --output, not --save-video."""
    with pytest.raises(NanosegError, match="^--output folder .* does not exist"):
        outputs.open_output(str(tmp_path / "missing" / "x.mp4"), exists=ALL)
    with pytest.raises(NanosegError, match="^--save-video folder .* does not exist"):
        VideoSink(str(tmp_path / "missing" / "x.mp4"))
    sink = outputs.open_output(str(tmp_path / "x.mp4"), exists=ALL)
    sink.fourccs = ("ZZZZ",)  # an OpenCV without an encoder for it
    with pytest.raises(NanosegError, match="^cannot write --output .*x.mp4: OpenCV has none"):
        sink.write(rendered_results(1)[0])


def test_run_camera_output_is_repeatable_and_save_video_stays():
    args = parse_args(["--bundle", "b", "--source", "0", "--output", "a.mp4", "--output",
                       "rtsp://@:8554/live", "--save-video", "c.mp4"])
    assert args.output == ["a.mp4", "rtsp://@:8554/live"] and args.save_video == "c.mp4"
    assert args.output_bitrate == gst.DEFAULT_BITRATE_KBPS


def test_check_platform_names_each_missing_element_and_its_package():
    """A fake element list: what is missing is named with the apt package to install."""
    present = set(["x264enc", "openh264enc", "rtspsrc"])
    status = check_platform.gst_element_status(False, lambda name: name not in present)
    assert status["x264enc"] is False and status["appsrc"] is True
    report = {"jetson": False, "gst_elements": dict(status, appsrc=True)}
    problem = check_platform.gstreamer_element_problems(report)
    assert "rtspsrc (apt gstreamer1.0-plugins-good)" in problem
    assert ("x264enc (apt gstreamer1.0-plugins-ugly) or openh264enc (apt "
            "gstreamer1.0-plugins-bad)") in problem
    assert problem.endswith("sudo apt-get install gstreamer1.0-plugins-good "
                            "gstreamer1.0-plugins-ugly")
    report["gst_elements"] = dict((name, name != "openh264enc") for name in status)
    assert check_platform.gstreamer_element_problems(report) is None  # x264enc suffices
    jetson = {"jetson": True, "gst_elements": {"nvv4l2h264enc": False}}
    assert "nvv4l2h264enc (apt nvidia-l4t-gstreamer)" in \
        check_platform.gstreamer_element_problems(jetson)


def test_rtsp_server_without_python_gi_names_the_apt_packages():
    """This venv has no python3-gi (apt's): the RTSP server says what to install."""
    with pytest.raises(NanosegError) as info:
        outputs.RtspServer("127.0.0.1", 8554, "live", 5000)
    message = str(info.value)
    assert message.startswith("--output rtsp:// needs GStreamer's RTSP server for Python")
    assert message.endswith("sudo apt-get install python3-gi gir1.2-gst-rtsp-server-1.0")
    assert "\n" not in message
    report = {"gst_rtsp_server": check_platform.rtsp_server_status()}
    assert report["gst_rtsp_server"]["ok"] is False
    assert check_platform.rtsp_server_problem(report).endswith(
        "--output rtsp:// needs it: sudo apt-get install python3-gi gir1.2-gst-rtsp-server-1.0")


@pytest.mark.parametrize("uri", ["frames/", "shots/out_%05d.png"])
def test_an_image_sequence_writes_every_frame_numbered(tmp_path, uri):
    sink = outputs.open_output(os.path.join(str(tmp_path), uri), fps=25)  # keeps the "/"
    assert isinstance(sink, outputs.ImageSequenceSink) and sink.delivery == "every"
    results = rendered_results(5)
    for result in results:
        sink.write(result)
    sink.close()
    names = sorted(os.listdir(os.path.dirname(os.path.join(str(tmp_path), uri))))
    expected = ["{:06d}.jpg".format(i) for i in range(5)] if uri.endswith("/") else \
        ["out_{:05d}.png".format(i) for i in range(5)]
    assert names == expected
    if uri.endswith(".png"):  # lossless: the very frames
        for name, result in zip(names, results):
            image = cv2.imread(str(tmp_path / "shots" / name))
            assert np.array_equal(image, result.rendered)


def test_an_image_name_without_a_frame_number_is_refused(tmp_path):
    with pytest.raises(NanosegError, match="needs the frame number in its name, like "
                                           "out_%05d.jpg"):
        outputs.open_output(str(tmp_path / "snapshot.jpg"))


def test_the_older_flags_are_rows_of_the_one_output_family(tmp_path):
    """--save-video, --save-masks, --view-port and the window open through open_output,
    parsed once, as the URIs they alias; --output takes the same URIs."""
    args = parse_args(["--bundle", "b", "--source", "x", "--save-video", "a.avi",
                       "--save-masks", "m", "--view-port", "8123", "--view-host", "0.0.0.0",
                       "--output", "rtp://10.0.0.2:5000", "--output", "f/"])
    assert run_camera.source_requests(args) == [
        ("a.avi", "video-file", "--save-video"), ("rtp://10.0.0.2:5000", None, "--output"),
        ("f/", None, "--output"), ("masks://m", None, "--save-masks")]
    assert run_camera.shared_requests(args) == [
        ("http://0.0.0.0:8123/", None, "--view-port"), ("display://0", None, "--output")]
    requests = run_camera.source_requests(args) + run_camera.shared_requests(args)
    assert [outputs.scheme_for(outputs.OutputURI(uri)).name
            for uri, scheme, _ in requests if scheme is None] == [
        "rtp", "images", "masks", "viewer", "display"]
    assert run_camera.written_paths(args) == [
        ("--save-video", "a.avi", False), ("--output", "f", True), ("--save-masks", "m", True)]


def test_the_viewer_and_a_window_given_as_output_uris_show_every_source():
    """With several sources, http:// and display:// are one sink for all of them (no
    {name} needed); the other outputs are one per source."""
    args = parse_args(["--bundle", "b", "--source", "x", "--source", "y", "--headless",
                       "--output", "http://127.0.0.1:8124/", "--output", "cam{index}.mkv"])
    assert run_camera.source_requests(args) == [("cam{index}.mkv", None, "--output")]
    assert run_camera.shared_requests(args) == [("http://127.0.0.1:8124/", None, "--output")]
    assert run_camera.per_source_outputs(args)[2:] == [("--output", "cam{index}.mkv")]


def test_a_viewer_and_masks_open_from_their_uris(tmp_path):
    viewer = outputs.open_output("http://127.0.0.1:0/", view_fps=5.0, title="t")
    try:
        assert isinstance(viewer, ViewerSink) and viewer.interval == 0.2
        assert viewer.viewer.port > 0
    finally:
        viewer.close()
    masks = outputs.open_output("masks://" + str(tmp_path / "m"))
    assert isinstance(masks, MaskSink) and os.path.isdir(str(tmp_path / "m"))
    with pytest.raises(NanosegError, match="needs a port"):
        outputs.open_output("http://127.0.0.1/")


def test_output_codec_h265_picks_an_h265_encoder_and_payloader():
    assert gst.choose_encoder("h265", ALL) == "nvv4l2h265enc"
    assert gst.choose_encoder("h265", lambda name: name != "nvv4l2h265enc") == "x265enc"
    assert gst.choose_encoder("h265", lambda name: "265" not in name) is None
    text = gst.rtp_pipeline("10.0.0.2", 5000, "x265enc")
    assert "x265enc tune=zerolatency speed-preset=ultrafast bitrate=4000 key-int-max=30 ! " \
           "h265parse config-interval=-1 ! rtph265pay config-interval=1 pt=96" in text
    assert "nvv4l2h265enc bitrate=4000000" in gst.file_pipeline("x.mkv", "nvv4l2h265enc",
                                                                 ".mkv")
    assert "rtph265depay ! rtph265pay name=pay0" in gst.rtsp_media_launch(5000, codec="h265")
    with pytest.raises(NanosegError, match="--output-codec must be one of h264 h265"):
        outputs.open_output("rtp://10.0.0.2:5000", codec="vp8")


def test_display_is_a_window_that_needs_a_display(monkeypatch):
    """display://0 is the window the run opens without --headless: here there is none."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(NanosegError, match="^cannot open a window: .*use --headless"):
        outputs.open_output("display://0")
    assert outputs.written_path("display://0") is None
    assert outputs.written_path("out_%05d.jpg") == (".", True)
