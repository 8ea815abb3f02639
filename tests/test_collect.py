"""edge/collect.py: run_camera --collect keeps frames worth labelling in the flat layout."""
import csv
import os

import cv2
import numpy as np
import pytest

from edge.collect import MANIFEST, CollectSink, unsure_share
from edge.runtime import run_pipeline
from edge.sinks import Result
from nanoseg.contract import Contract
from nanoseg.errors import NanosegError
from nanoseg.normalization import Normalization
from tests.video_helpers import FakeBackend, folder_stream

H, W = 16, 16


def sigmoid_contract():
    return Contract.create(H, W, ["nail"], "sigmoid", Normalization.named("scale"))


class Clock(object):
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def frame_result(index, p_nail):
    """A frame whose model output is ``p_nail`` everywhere (sigmoid)."""
    probs = np.full((H, W, 1), p_nail, np.float32)
    labels = (probs[..., 0] > 0.5).astype(np.uint8)
    frame = np.full((32, 32, 3), index % 256, np.uint8)
    return Result(index, "f", frame, small_labels=labels, probabilities=probs)


def manifest_rows(folder):
    with open(os.path.join(str(folder), MANIFEST)) as handle:
        return list(csv.DictReader(handle))


def test_the_unsure_share_counts_pixels_whose_chosen_label_is_below_three_quarters():
    sigmoid = np.array([[[0.5], [0.9], [0.2], [0.3]]], np.float32)
    assert unsure_share(sigmoid) == 0.5          # 0.5 and 0.3 (0.7) are unsure
    softmax = np.array([[[0.4, 0.3, 0.3], [0.8, 0.1, 0.1]]], np.float32)
    assert unsure_share(softmax) == 0.5


def test_unsure_frames_class_changes_and_the_period_are_kept_with_their_reason(tmp_path):
    clock = Clock()
    sink = CollectSink(str(tmp_path / "c"), sigmoid_contract(), "clip.mp4", uncertain=0.5,
                       every=10.0, gap=1.0, clock=clock)
    sequence = [(0.0, 0.05), (0.5, 0.55), (0.6, 0.55), (2.0, 0.05), (4.0, 0.9), (9.0, 0.95),
                (11.0, 0.98)]
    for index, (now, p) in enumerate(sequence):
        clock.now = now
        sink.write(frame_result(index, p))
    rows = manifest_rows(tmp_path / "c")
    # 1: unsure + the nail appears; 2: too close to 1; 3: the nail disappears;
    # 4: appears again; 6: ten seconds after the first frame
    assert [(int(r["frame"]), r["reason"]) for r in rows] == [
        (1, "uncertain+class_change"), (3, "class_change"), (4, "class_change"), (6, "every")]
    assert rows[0]["source"] == "clip.mp4" and rows[0]["classes"] == "nail"
    assert sink.counts() == {"kept": 4, "collect_stopped": None, "kept_uncertain": 1,
                             "kept_class_change": 3, "kept_every": 1}
    image = cv2.imread(str(tmp_path / "c" / rows[0]["image"]))
    mask = cv2.imread(str(tmp_path / "c" / rows[0]["mask"]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (32, 32, 3) and int(image[0, 0, 0]) == 1
    assert mask.shape == (32, 32) and set(np.unique(mask)) == {255}   # a binary pre-label


def test_collection_stops_at_the_maximum_and_before_the_disk_is_full(tmp_path):
    clock = Clock()
    sink = CollectSink(str(tmp_path / "c"), sigmoid_contract(), "cam", uncertain=0.1,
                       max_frames=2, gap=0.0, clock=clock)
    for index in range(5):
        sink.write(frame_result(index, 0.5))
    assert sink.kept == 2 and "--collect-max 2" in sink.counts()["collect_stopped"]
    full = CollectSink(str(tmp_path / "d"), sigmoid_contract(), "cam", uncertain=0.1,
                       gap=0.0, keep_free=1 << 62)
    full.write(frame_result(0, 0.5))
    assert full.kept == 0 and "free on the disk" in full.counts()["collect_stopped"]
    assert os.listdir(str(tmp_path / "d" / "images")) == []


def test_softmax_pre_labels_hold_the_label_ids(tmp_path):
    contract = Contract.create(H, W, ["car", "road"], "softmax", Normalization.named("scale"))
    clock = Clock()
    sink = CollectSink(str(tmp_path / "c"), contract, "cam", uncertain=1.0, every=1.0,
                       clock=clock)
    labels = np.zeros((H, W), np.uint8)
    labels[:, 8:] = 2
    sink.write(Result(0, "f", np.zeros((H, W, 3), np.uint8), small_labels=labels))
    assert not sink.needs_probabilities       # 1: the uncertainty trigger is off
    clock.now = 1.0
    sink.write(Result(1, "f", np.zeros((H, W, 3), np.uint8), small_labels=labels))
    row = manifest_rows(tmp_path / "c")[0]
    mask = cv2.imread(str(tmp_path / "c" / row["mask"]), cv2.IMREAD_UNCHANGED)
    assert set(np.unique(mask)) == {0, 2} and row["classes"] == "road"


@pytest.mark.parametrize("kwargs, message", [
    (dict(uncertain=1.5), "--collect-uncertain"), (dict(every=0), "--collect-every"),
    (dict(max_frames=0), "--collect-max"), (dict(gap=-1), "--collect-gap")])
def test_impossible_collect_numbers_are_one_line(tmp_path, kwargs, message):
    with pytest.raises(NanosegError, match=message):
        CollectSink(str(tmp_path), sigmoid_contract(), "cam", **kwargs)


class UnsureBackend(FakeBackend):
    """P(thing) = 0.5 everywhere: every frame is unsure."""

    def infer(self, x):
        return np.full((self.contract.height, self.contract.width, 1), 0.5, np.float32)


def test_the_runtime_hands_the_model_output_to_the_collector_off_the_inference_thread(
        tmp_path):
    backend = UnsureBackend()
    sink = CollectSink(str(tmp_path / "c"), backend.contract, "frames", uncertain=0.5,
                       gap=0.0, max_frames=5)
    summary = run_pipeline(folder_stream(tmp_path, count=8), backend, [sink])
    assert summary["frames"] == 8 and summary["error"] is None
    collect = [s for s in summary["sinks"] if s["sink"] == "CollectSink"][0]
    assert collect["delivery"] == "every"
    assert collect["kept"] == 5 and collect["kept_uncertain"] == 5
    assert len(os.listdir(str(tmp_path / "c" / "images"))) == 5
    assert [float(r["unsure_share"]) for r in manifest_rows(tmp_path / "c")] == [1.0] * 5
