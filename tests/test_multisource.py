"""Several sources on one backend (edge/multisource.py): names, output templates, taking
frames in turn, and whole runs of two real videos through the runtime's one loop."""
import itertools
import os
import threading
import time

import cv2
import numpy as np
import pytest

from edge.multisource import (MultiStream, check_templates, for_source, source_names)
from edge.runtime import run_pipeline
from edge.sinks import MaskSink, Sink
from edge.sources import Reader, SourceStream, open_source
from nanoseg.errors import NanosegError
from tests.multisource_helpers import standin_backend, write_camvid_videos
from tests.video_helpers import count_frames, wait_until


class SilentStream(object):
    """A live source that is reconnecting: never a frame, never finished."""

    live = True
    description = "silent camera"
    fps = 30.0
    captured = dropped = stalls = 0
    reconnects = 3
    reconnecting = True
    end_reason = error = None
    finished = False

    def get(self, timeout=None):
        time.sleep(min(timeout or 0, 0.5))  # what a blocking get would cost the loop
        return None

    def stop(self):
        pass


@pytest.fixture(scope="module")
def street_videos(tmp_path_factory, camvid_dir):
    return write_camvid_videos(tmp_path_factory.mktemp("street"), camvid_dir)


def test_source_names_are_short_unique_and_safe_for_file_names():
    names = source_names(["csi://0", "/data/clip.mp4", "0", "rtsp://user:pw@cam.local/live",
                          "other/clip.mkv", "shots/*.png"])
    assert names == ["csi0", "clip", "video0", "cam.local_live", "clip-2", "shots"]


def test_output_templates_name_the_source_and_untemplated_outputs_are_refused():
    assert for_source("masks/{name}", "csi0", 0) == "masks/csi0"
    assert for_source("rtsp://@:8554/cam{index}", "x", 1) == "rtsp://@:8554/cam1"
    check_templates([("--save-masks", "masks")], 1)  # one source: nothing to tell apart
    check_templates([("--output", "cam{index}.mkv"), ("--save-video", None)], 2)
    with pytest.raises(NanosegError) as info:
        check_templates([("--output", "cam{index}.mkv"), ("--save-masks", "masks")], 2)
    message = str(info.value)
    assert "--save-masks masks" in message and "{name}" in message and "\n" not in message


def test_a_silent_source_does_not_stall_a_video_and_frames_say_their_source(street_videos):
    video = open_source(street_videos[0])
    streams = MultiStream([SilentStream(), video], ["silent", "street"])
    frames, start = [], time.monotonic()
    while True:
        frame = streams.get(timeout=0.2)
        if frame is None and video.finished:
            break
        if frame is not None:
            frames.append(frame)
    streams.stop()
    assert len(frames) == count_frames(street_videos[0])
    assert set(f.source for f in frames) == {1}
    assert time.monotonic() - start < 5.0  # not one blocking wait per frame
    states = streams.states()
    assert [s["state"] for s in states] == ["reconnecting", "ended"]
    assert states[0]["reconnects"] == 3 and states[1]["processed"] == len(frames)


class OrderSink(Sink):
    """Records which source each frame came from, in the order the sinks get them."""

    def __init__(self):
        self.order = []

    def write(self, result):
        self.order.append(result.source)


def test_two_videos_share_one_backend_in_turn_and_each_writes_its_own_masks(
        street_videos, tmp_path):
    streams = [open_source(path) for path in street_videos]
    names = source_names(street_videos)
    sinks = [OrderSink()]
    for index, name in enumerate(names):
        sink = MaskSink(str(tmp_path / for_source("masks_{name}", name, index)))
        sink.source_index = index
        sinks.append(sink)
    calls = []
    backend = standin_backend(5.0)
    real_infer = backend.infer
    backend.infer = lambda x: calls.append(threading.get_ident()) or real_infer(x)
    assert wait_until(lambda: all(s.captured >= 2 for s in streams), timeout=30.0), \
        "a source decoded no frames"  # both have frames waiting: in turn from the start
    summary = run_pipeline(MultiStream(streams, names), backend, sinks)
    counts = [count_frames(path) for path in street_videos]
    assert summary["error"] is None and summary["frames"] == sum(counts) == len(calls)
    assert len(set(calls)) == 1  # one inference thread, one backend
    assert [s["processed"] for s in summary["sources"]] == counts
    order = sinks[0].order
    assert order[:4] == [0, 1, 0, 1]  # in turn: neither source starves the other
    assert max(len(list(run)) for _, run in itertools.groupby(order)) <= 2
    for name, count in zip(names, counts):
        masks = sorted(os.listdir(str(tmp_path / "masks_{}".format(name))))
        assert len(masks) == count
        labels = cv2.imread(str(tmp_path / "masks_{}".format(name) / masks[0]),
                            cv2.IMREAD_UNCHANGED)
        assert labels.shape == (360, 480) and labels.max() == 3


def test_a_lost_source_is_the_runs_error_but_the_other_source_is_processed_to_its_end(
        street_videos, tmp_path):
    class LostStream(SilentStream):
        reconnecting = False
        finished = True
        end_reason = "source lost"
        error = "silent camera was lost and 5 reconnect attempts failed"

    video = open_source(street_videos[1])
    summary = run_pipeline(MultiStream([LostStream(), video], ["cam", "street"]),
                           standin_backend(1.0), [])
    assert summary["frames"] == count_frames(street_videos[1])
    assert summary["error"] == "cam: silent camera was lost and 5 reconnect attempts failed"
    assert summary["sources"][0]["state"] == "ended"


class LosingCamera(Reader):
    """A live camera that serves three frames, then is lost and never opens again."""

    live = True
    description = "losing camera"

    def __init__(self):
        self.opens = 0
        self.served = 0

    def open(self):
        self.opens += 1
        if self.opens > 1:
            raise NanosegError("losing camera: no such device")

    def read(self):
        if self.served >= 3:
            return None
        self.served += 1
        return "c", np.zeros((24, 32, 3), np.uint8)

    def close(self):
        pass


def test_a_lost_camera_reads_reconnecting_then_ended_with_its_error():
    stream = SourceStream(LosingCamera(), reconnect_attempts=2, backoff=0.3,
                          stall_timeout=0).start()
    streams = MultiStream([stream], ["cam"])
    assert wait_until(lambda: streams.states()[0]["state"] == "reconnecting")
    assert wait_until(lambda: streams.states()[0]["state"] == "ended", timeout=10)
    streams.stop()
    assert streams.error == "losing camera was lost and 2 reconnect attempts failed"
    assert streams.source_summaries()[0]["end_reason"] == "source lost"
