"""nanoseg/metrics.py against IoU computed by hand on tiny masks (numpy only: runs on 3.6 too).

Run under the Jetson's Python as well:  /tmp/venv36/bin/python -m pytest tests/test_metrics.py
"""
import json
import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from nanoseg import metrics  # noqa: E402
from nanoseg.errors import NanosegError  # noqa: E402

GT = np.array([[0, 0, 1, 1],
               [0, 0, 1, 1],
               [2, 2, 255, 255],
               [2, 2, 0, 0]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1],
                 [0, 0, 1, 0],
                 [2, 0, 2, 1],     # the last two sit on ignored pixels: never counted
                 [2, 2, 0, 2]], dtype=np.uint8)


def test_confusion_matrix_counts_by_hand():
    # rows = gt, cols = pred. gt 0: (0,0)(0,1)->1 (1,0)(1,1)(3,2)(3,3)->2 : [4, 1, 1]
    # gt 1: (0,2)(0,3)(1,2) -> 1, (1,3) -> 0 : [1, 3, 0];  gt 2: (2,1)->0, rest 2 : [1, 0, 3]
    matrix = metrics.confusion_matrix(PRED, GT, 3)
    assert matrix.tolist() == [[4, 1, 1], [1, 3, 0], [1, 0, 3]]


def test_iou_matches_hand_computation():
    acc = metrics.MetricAccumulator(["background", "nail", "car"])
    acc.update(PRED, GT)
    report = acc.result()
    # background: TP 4, FP 1+1, FN 1+1 -> 4/8 ; class 1: 3/(3+1+1) ; class 2: 3/(3+1+1)
    expected = {"background": 4 / 8.0, "nail": 3 / 5.0, "car": 3 / 5.0}
    for name, value in expected.items():
        assert report["iou_per_class"][name] == pytest.approx(value, abs=1e-12)
    assert report["miou"] == pytest.approx((0.5 + 0.6 + 0.6) / 3, abs=1e-12)
    assert report["pixel_accuracy"] == pytest.approx(10 / 14.0, abs=1e-12)
    assert report["scored_pixels"] == 14          # 16 minus the two ignored pixels
    json.dumps(report, allow_nan=False)           # strict JSON: no NaN sneaks in


def test_accumulates_batches_like_one_big_image():
    acc = metrics.MetricAccumulator(["background", "nail", "car"])
    acc.update(np.stack([PRED, GT]), np.stack([GT, GT]))
    one = metrics.confusion_matrix(PRED, GT, 3) + metrics.confusion_matrix(GT, GT, 3)
    assert acc.matrix.tolist() == one.tolist()
    assert acc.images == 2


def test_absent_class_is_skipped_not_zero():
    gt = np.array([[0, 1], [0, 1]], dtype=np.uint8)
    pred = np.array([[0, 1], [1, 1]], dtype=np.uint8)
    acc = metrics.MetricAccumulator(["background", "a", "b"])
    acc.update(pred, gt)
    report = acc.result()
    assert report["iou_per_class"]["b"] is None
    assert report["miou"] == pytest.approx((1 / 2.0 + 2 / 3.0) / 2)


def test_binary_mask_iou_by_hand():
    gt = np.zeros((5, 5), np.uint8)
    gt[1:4, 1:4] = 1                               # 9 pixels
    pred = np.zeros((5, 5), np.uint8)
    pred[2:5, 2:5] = 1                             # 9 pixels, overlap 2x2 = 4
    acc = metrics.MetricAccumulator(["background", "nail"])
    acc.update(pred, gt)
    assert acc.result()["iou_per_class"]["nail"] == pytest.approx(4 / 14.0)
    assert acc.result()["iou_per_class"]["background"] == pytest.approx(11 / 21.0)


def test_bad_inputs_give_one_line_errors():
    with pytest.raises(NanosegError, match="differs from ground truth shape"):
        metrics.confusion_matrix(PRED[:2], GT, 3)
    with pytest.raises(NanosegError, match="outside 0..1"):
        metrics.confusion_matrix(PRED, GT, 2)
    with pytest.raises(NanosegError, match="at least two labels"):
        metrics.MetricAccumulator(["background"])


def test_format_report_names_every_class():
    acc = metrics.MetricAccumulator(["background", "nail", "car"])
    acc.update(PRED, GT)
    text = metrics.format_report(acc.result())
    assert "mIoU 0.5667" in text and "car" in text and "nail" in text
