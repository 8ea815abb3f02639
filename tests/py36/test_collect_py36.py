"""--collect under the Jetson's Python 3.6 + OpenCV 4.1.1: the runtime hands the model output
to the collector, which writes the flat layout and its manifest."""
import csv
import os

import numpy as np

from edge.collect import CollectSink
from edge.runtime import run_pipeline
from tests.video_helpers import FakeBackend, folder_stream


class HalfSureBackend(FakeBackend):
    """P(thing) = 0.6 on the left half (unsure, labelled), 0.0 on the right (sure)."""

    def infer(self, x):
        probs = np.zeros((self.contract.height, self.contract.width, 1), np.float32)
        probs[:, :self.contract.width // 2] = 0.6
        return probs


def test_unsure_frames_are_kept_with_binary_pre_labels_and_a_manifest(tmp_path):
    backend = HalfSureBackend()
    folder = str(tmp_path / "collected")
    sink = CollectSink(folder, backend.contract, "frames", uncertain=0.4, gap=0.0,
                       max_frames=3)
    summary = run_pipeline(folder_stream(tmp_path, count=6), backend, [sink])
    assert summary["error"] is None
    stats = [s for s in summary["sinks"] if s["sink"] == "CollectSink"][0]
    assert stats["kept"] == 3 and stats["kept_uncertain"] == 3
    with open(os.path.join(folder, "collected.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert [r["reason"] for r in rows] == ["uncertain"] * 3
    import cv2
    mask = cv2.imread(os.path.join(folder, rows[0]["mask"]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (48, 64) and set(np.unique(mask)) == {0, 255}
    assert (mask[:, :32] == 255).all() and (mask[:, 32:] == 0).all()
