"""--output under the Jetson's Python 3.6 + OpenCV 4.1.1 (pip's: no GStreamer, no gi).

The GStreamer pipelines run for real in tests/gst; here the same modules must import and
choose under 3.6: element lookup without python3-gi, pipeline strings, the software fallback
for an .mp4 and the one-line error for a stream.
"""
import pytest

from edge import gst, outputs
from nanoseg.errors import NanosegError
from edge.sinks import VideoSink
from tests.video_helpers import count_frames, rendered_results


def test_lookup_without_gi_and_the_encoder_order():
    assert gst._find_with_gi("x264enc") is None  # no python3-gi in this venv
    assert gst.choose_h264_encoder(lambda name: name in ("nvv4l2h264enc", "nvvidconv")) \
        == "nvv4l2h264enc"
    assert gst.missing_elements(["nanoseg-no-such-element"]) == ["nanoseg-no-such-element"]
    assert "nvvidconv" in gst.file_pipeline("a.mp4", "nvv4l2h264enc", ".mp4")


def test_mp4_falls_back_and_streams_say_what_is_missing(tmp_path):
    path = str(tmp_path / "out.mp4")
    sink = outputs.open_output(path, fps=15, exists=lambda name: True)
    assert type(sink) is VideoSink
    for result in rendered_results(5):
        sink.write(result)
    sink.close()
    assert count_frames(path) == 5
    with pytest.raises(NanosegError, match="needs an OpenCV built with GStreamer"):
        outputs.open_output("rtp://127.0.0.1:5000", exists=lambda name: True)
