"""--output in this venv: URIs, pipeline strings, one-line errors, the software fallback.

pip's OpenCV has no GStreamer, which is exactly the case to check here: an .mp4 falls back
to OpenCV's own writer and rtp:// / rtsp:// say what to install. The GStreamer side runs for
real in tests/gst (tests/test_gst.py).
"""
import pytest

from edge import gst, outputs
from nanoseg.errors import NanosegError
from edge.run_camera import parse_args
from edge.sinks import VideoSink
from jetson import check_platform
from tests.video_helpers import count_frames, rendered_results

ALL = lambda name: True  # noqa: E731  every element present


def test_each_encoder_chain_feeds_h264parse():
    nvidia = gst.encoder_chain("nvv4l2h264enc", 2000, 15)
    assert "nvvidconv ! video/x-raw(memory:NVMM)" in nvidia
    assert "nvv4l2h264enc bitrate=2000000 iframeinterval=15" in nvidia
    x264 = gst.encoder_chain("x264enc", 2000, 15)
    assert "x264enc tune=zerolatency speed-preset=ultrafast bitrate=2000 key-int-max=15" in x264
    assert "openh264enc bitrate=2000000 gop-size=15" in gst.encoder_chain("openh264enc", 2000,
                                                                          15)
    for chain in (nvidia, x264):
        assert chain.endswith("! h264parse config-interval=-1")
    with pytest.raises(NanosegError, match="unknown H.264 encoder"):
        gst.encoder_chain("vp8enc")


def test_file_and_rtp_pipelines():
    mp4 = gst.file_pipeline('/tmp/my "odd" dir/x.mp4', "x264enc", ".mp4")
    assert mp4.startswith("appsrc ! videoconvert") and "! mp4mux ! filesink location=" in mp4
    assert mp4.endswith('location="/tmp/my \\"odd\\" dir/x.mp4"')
    assert "matroskamux" in gst.file_pipeline("x.mkv", "x264enc", ".mkv")
    with pytest.raises(NanosegError, match=".mp4 or .mkv"):
        gst.file_pipeline("x.avi", "x264enc", ".avi")
    rtp = gst.rtp_pipeline("10.0.0.7", 5000, "x264enc")
    assert 'rtph264pay config-interval=1 pt=96 ! udpsink host="10.0.0.7" port=5000' in rtp
    media = gst.rtsp_media_launch(6000)
    assert media.startswith("( udpsrc") and "port=6000" in media and "name=pay0" in media


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
