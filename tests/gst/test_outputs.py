"""--output for real: H.264 files, RTP and RTSP through apt's GStreamer, decoded again.

The sinks get overlays drawn by edge.overlay; what arrives (decoded from the file, or
received on 127.0.0.1 by a GStreamer client) is matched back to the rendered frames: every
frame there, in order, at PSNR >= 30 dB.
"""
import socket
import time

import cv2
import pytest

from edge import gst, outputs
from nanoseg.errors import NanosegError
from edge.sinks import VideoSink
from receive_helpers import MIN_PSNR, match_frames, rtp_receiver, rtsp_receiver
from tests.gst.gst_helpers import psnr
from tests.video_helpers import decode_frames, rendered_results

FRAMES = 40


def assert_all_frames_match(received, results, first=0):
    """received[i] is results[first + i] for every i, each at PSNR >= MIN_PSNR."""
    matches = match_frames(received, results)
    assert [m[0] for m in matches] == list(range(first, first + len(received))), matches
    worst = min(m[1] for m in matches)
    print("{} frames from #{}: worst PSNR {:.1f} dB".format(len(received), first, worst))
    assert worst >= MIN_PSNR, "worst PSNR {:.1f} dB".format(worst)
    return worst


def test_this_machine_picks_x264_and_no_hardware_encoder():
    assert gst.element_exists("x264enc") and not gst.element_exists("nvv4l2h264enc")
    assert gst.choose_h264_encoder() == "x264enc"
    assert gst.choose_h264_encoder(lambda name: name == "openh264enc") == "openh264enc"
    # nvv4l2h264enc without nvvidconv cannot take system-memory frames
    assert gst.choose_h264_encoder(lambda name: name in ("nvv4l2h264enc", "x264enc")) \
        == "x264enc"
    assert gst.choose_h264_encoder(lambda name: name != "x264enc") == "nvv4l2h264enc"
    assert gst.choose_h264_encoder(lambda name: False) is None


@pytest.mark.parametrize("name", ["overlay.mp4", "overlay.mkv"])
def test_h264_file_plays_with_every_frame(tmp_path, name):
    path = str(tmp_path / name)
    sink = outputs.open_output(path, fps=25)
    assert isinstance(sink, outputs.H264FileSink) and sink.encoder == "x264enc"
    assert sink.delivery == "every" and sink.needs_render
    results = rendered_results(FRAMES)
    for result in results:
        sink.write(result)
    sink.close()
    decoded = decode_frames(path)
    assert len(decoded) == FRAMES
    assert_all_frames_match(decoded, results)


@pytest.mark.parametrize("name", ["overlay.mp4", "overlay.mkv"])
def test_an_h265_file_plays_with_every_frame(tmp_path, name):
    """--output-codec h265: x265enc here (nvv4l2h265enc on a Jetson), h265parse, the muxer."""
    path = str(tmp_path / name)
    sink = outputs.open_output(path, fps=25, codec="h265")
    assert isinstance(sink, outputs.H264FileSink) and sink.encoder == "x265enc"
    results = rendered_results(FRAMES)
    for result in results:
        sink.write(result)
    sink.close()
    capture = cv2.VideoCapture(path)
    codec = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    capture.release()
    assert codec in ("hevc", "h265", "hev1", "hvc1"), codec
    decoded = decode_frames(path)
    assert len(decoded) == FRAMES
    assert_all_frames_match(decoded, results)


def test_awkward_and_changing_frame_sizes_keep_every_frame(tmp_path):
    """318 px wide (BGR rows not on 4 bytes), odd heights, a size change mid-run.

    OpenCV's GStreamer writer repeated the first frame at such widths until frames were
    resized to a width that is a multiple of 4: compare the content, not only the count.
    """
    path = str(tmp_path / "awkward.mp4")
    sink = outputs.open_output(path, fps=25)
    results = rendered_results(12, size=(239, 318))
    size = outputs.writer_size(318, 239)
    assert size == (316, 238)
    expected = []
    for number, result in enumerate(results):
        if number >= 6:  # the source changes resolution
            result.rendered = cv2.resize(result.rendered, (250, 181))
        sink.write(result)
        expected.append(cv2.resize(result.rendered, size, interpolation=cv2.INTER_AREA))
    sink.close()
    decoded = decode_frames(path)
    assert len(decoded) == 12 and decoded[0].shape == (238, 316, 3)
    worst = min(psnr(frame, want) for frame, want in zip(decoded, expected))
    assert worst >= MIN_PSNR, "worst PSNR {:.1f} dB".format(worst)


def test_other_file_kinds_keep_opencvs_writer(tmp_path):
    sink = outputs.open_output(str(tmp_path / "overlay.avi"), fps=25)
    assert isinstance(sink, VideoSink)
    for result in rendered_results(5):
        sink.write(result)
    sink.close()
    assert len(decode_frames(str(tmp_path / "overlay.avi"))) == 5


def test_rtp_output_arrives_complete(tmp_path):
    port = outputs.free_port()
    receiver = rtp_receiver(port).start()
    try:
        sink = outputs.open_output("rtp://127.0.0.1:{}".format(port), fps=25)
        assert isinstance(sink, outputs.RtpSink)
        results = rendered_results(FRAMES)
        for result in results:
            sink.write(result)
            time.sleep(0.01)
        sink.close()
        received = receiver.pull(FRAMES, timeout=20)
    finally:
        receiver.stop()
    assert len(received) == FRAMES
    assert_all_frames_match(received, results)


def test_rtsp_server_streams_every_frame_after_the_client_joins():
    """A client joins a running stream; from its first frame on nothing is lost."""
    port = outputs.free_port(kind=socket.SOCK_STREAM)
    url = "rtsp://127.0.0.1:{}/nanoseg".format(port)
    sink = outputs.open_output(url, fps=25)
    assert isinstance(sink, outputs.RtspServerSink)
    results = rendered_results(48)
    receiver = None
    try:
        receiver = rtsp_receiver(url).start()
        sent = 0
        deadline = time.monotonic() + 20
        # until the client decodes a frame (it starts at a key frame), bounded in time/count
        while not receiver.frames and sent < 36 and time.monotonic() < deadline:
            sink.write(results[sent])
            sent += 1
            receiver.pull(1, timeout=0.04)
        assert receiver.frames, "no RTSP frame within {} frames / 20 s".format(sent)
        for result in results[sent:]:
            sink.write(result)
            time.sleep(0.02)
        first = match_frames(receiver.frames[:1], results)[0][0]
        expected = len(results) - first
        received = receiver.pull(expected, timeout=15)
    finally:
        if receiver is not None:
            receiver.stop()
        sink.close()
    assert len(received) == expected
    assert_all_frames_match(received, results, first)


def test_rtsp_port_in_use_is_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(NanosegError, match="port {} is in use".format(port)):
            outputs.open_output("rtsp://127.0.0.1:{}/x".format(port))


def test_missing_elements_are_named_with_their_packages(tmp_path):
    no_rtp = lambda name: name != "rtph264pay"  # noqa: E731
    with pytest.raises(NanosegError) as info:
        outputs.open_output("rtp://127.0.0.1:5000", exists=no_rtp)
    assert "rtph264pay (apt gstreamer1.0-plugins-good)" in str(info.value)
    assert "\n" not in str(info.value)
