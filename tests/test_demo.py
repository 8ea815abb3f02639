"""The README's first command, reduced (--quick), end to end: every stage really runs.

Generated data -> train -> evaluate -> export + parity -> validate -> edge app headless on a
generated video. Runs as a subprocess exactly as a user starts it (python3 demo.py).
"""
import json
import os
import subprocess
import sys

import cv2

from tests.video_helpers import count_frames

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Measured on the quick demo (64x96, 8 epochs, 32 train images): val mIoU ~0.6-0.8 with
# background ~0.95; a model that predicts background everywhere scores ~0.47 (nails ~10 %
# of pixels), so 0.55 proves the nail class was learned at all.
MIOU_FLOOR = 0.55


def test_quick_demo_runs_the_whole_journey(tmp_path):
    out = str(tmp_path / "demo")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "demo.py"), "--quick",
                             "--out", out], cwd=str(tmp_path), capture_output=True, text=True,
                            timeout=1800)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    for stage in range(1, 7):
        assert "[{}/6]".format(stage) in result.stdout
    summary_path = os.path.join(out, "summary.json")
    with open(summary_path) as handle:
        summary = json.load(handle)
    files = summary["files"]
    bundle = files["bundle"]
    for name in ("model.h5", "contract.json", "evaluation.json", "model.onnx",
                 "model_fp16.onnx", "golden.npz", "parity.json", "validation.json",
                 "curves.png", "iou_per_class.png"):
        assert os.path.isfile(os.path.join(bundle, name)), name
    for key in ("overlay", "edge_summary", "summary_md", "video"):
        assert os.path.isfile(files[key]), key
        assert files[key] in result.stdout
    assert summary["miou"] >= MIOU_FLOOR, summary["iou_per_class"]
    assert summary["parity"]["onnx"]["mask_agreement"] >= 0.999
    assert summary["parity"]["onnx_fp16"]["decisive_agreement"] >= 0.999
    frames_in = count_frames(files["video"])
    assert frames_in > 0 and count_frames(files["overlay"]) == frames_in
    assert summary["edge"]["frames"] == frames_in and summary["edge"]["fps"] > 0
    masks = sorted(os.listdir(files["masks"]))
    assert len(masks) == frames_in
    labels = cv2.imread(os.path.join(files["masks"], masks[0]), cv2.IMREAD_UNCHANGED)
    assert set(labels.ravel().tolist()) <= {0, 1}
