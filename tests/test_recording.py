"""A recording on a full disk (a real 2 MB tmpfs with 64 KiB left) is never reported as saved:
the file is read back after closing (edge/recording.py) and mask PNGs go through the atomic
writer, so the run's error, its summary and its exit status say what was kept."""
import logging
import os

import cv2
import numpy as np
import pytest

from edge.recording import kept_frames
from edge.run_summary import format_sink
from edge.runtime import run_pipeline
from edge.sinks import MaskSink, Result, VideoSink
from edge.sources import SourceStream
from edge.sources.readers import ImageListReader
from nanoseg.errors import NanosegError
from tests.video_helpers import FakeBackend


def noisy_results(count, size=(240, 320)):
    """Results whose overlay is noise: it does not compress, so 90 frames fill 64 KiB."""
    random = np.random.RandomState(0)
    results = []
    for index in range(count):
        frame = random.randint(0, 256, size + (3,)).astype(np.uint8)
        result = Result(index, "noise{}".format(index), frame,
                        random.randint(0, 3, size).astype(np.uint8))
        result.rendered = frame
        results.append(result)
    return results


def test_a_video_that_fits_keeps_every_frame_and_is_saved(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    path = str(tmp_path / "o.mp4")
    sink = VideoSink(path, 30.0)
    for result in noisy_results(12):
        sink.write(result)
    sink.close()
    assert sink.kept == 12 == kept_frames(path, 12)
    assert "saved {} (12 frames)".format(path) in caplog.text


def test_a_video_on_a_full_disk_is_an_error_naming_what_was_kept(nearly_full_folder, caplog):
    caplog.set_level(logging.INFO)
    path = os.path.join(nearly_full_folder, "o.mp4")
    sink = VideoSink(path, 30.0)
    for result in noisy_results(90):
        sink.write(result)  # cv2.VideoWriter reports nothing
    with pytest.raises(NanosegError, match="--save-video {} was not finalized: 0 of the 90 "
                                           "frames written play back".format(path)):
        sink.close()
    assert sink.kept == 0 and sink.counts() == {"kept": 0}
    assert "saved" not in caplog.text


def test_a_run_recording_to_a_full_disk_ends_with_the_error_and_the_kept_count(
        nearly_full_folder, tmp_path):
    paths = []
    for result in noisy_results(90):  # PNG frames of noise: they do not compress
        paths.append(str(tmp_path / "{:03d}.png".format(result.index)))
        assert cv2.imwrite(paths[-1], result.frame)
    stream = SourceStream(ImageListReader(paths, "noise frames")).start()
    video = os.path.join(nearly_full_folder, "o.mp4")
    summary = run_pipeline(stream, FakeBackend(), [VideoSink(video, 30.0)])
    assert summary["frames"] == 90
    assert summary["error"].startswith("--save-video {} was not finalized: 0 of the 90".format(
        video))
    stats = summary["sinks"][0]
    assert stats["written"] == 90 and stats["kept"] == 0
    assert "90 written but only 0 kept in the file" in format_sink(stats)


def test_masks_on_a_full_disk_are_an_error_naming_the_file_and_leave_no_empty_png(
        nearly_full_folder):
    sink = MaskSink(nearly_full_folder)
    with pytest.raises(NanosegError) as raised:
        for result in noisy_results(90, size=(120, 160)):
            sink.write(result)
    failed = os.path.join(nearly_full_folder, "{:06d}_noise{}.png".format(
        sink.written, sink.written))
    assert str(raised.value).startswith("cannot write --save-masks {}: No space left".format(
        failed))
    names = os.listdir(nearly_full_folder)
    assert 0 < sink.written == len(names) < 90
    assert all(os.path.getsize(os.path.join(nearly_full_folder, n)) > 0 for n in names)
    assert not [n for n in names if ".tmp" in n]


class _CannotDecode(object):
    """An OpenCV build that cannot decode the file (e.g. GStreamer only, GPU-memory decoder)."""

    def __init__(self, path):
        pass

    def isOpened(self):
        return False

    def release(self):
        pass


def test_an_opencv_that_cannot_decode_judges_an_mp4_by_its_boxes(tmp_path, monkeypatch,
                                                                  caplog):
    """A whole mp4 (its moov index written) counts as kept; the same file cut short, as a
    full disk leaves it, keeps nothing; another container is reported as not verified."""
    import edge.recording as recording
    path = str(tmp_path / "o.mp4")
    sink = VideoSink(path, 30.0)
    for result in noisy_results(12):
        sink.write(result)
    sink.close()
    data = open(path, "rb").read()
    monkeypatch.setattr(recording.cv2, "VideoCapture", _CannotDecode)
    assert recording.mp4_is_complete(path) and kept_frames(path, 12) == 12
    cut = str(tmp_path / "cut.mp4")
    with open(cut, "wb") as handle:
        handle.write(data[:len(data) - 200])
    assert not recording.mp4_is_complete(cut) and kept_frames(cut, 12) == 0
    other = str(tmp_path / "o.avi")
    with open(other, "wb") as handle:
        handle.write(data)
    assert kept_frames(other, 12) is None
    caplog.set_level(logging.WARNING)
    avi = VideoSink(other, 30.0)
    for result in noisy_results(3):
        avi.write(result)
    avi.close()  # not verified: a warning, not an error
    assert "cannot decode it to check the 3 frames written (not verified)" in caplog.text
