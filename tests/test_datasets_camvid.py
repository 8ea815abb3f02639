"""The camvid layout on camvid-mini: all classes or a selection, ids shifted by one,
Unlabelled ignored unless named, the tutorials' class names."""
import cv2
import numpy as np
import pytest

from nanoseg.datasets import open_dataset
from nanoseg.errors import NanosegError


def test_camvid_default_is_all_eleven_classes_shifted_by_one(camvid_dir):
    train = open_dataset(camvid_dir, "camvid", split="train")
    val = open_dataset(camvid_dir, "camvid", split="val")
    assert (len(train), len(val)) == (60, 20)
    assert len(open_dataset(camvid_dir, "camvid", split="all")) == 80
    assert train.class_names[0] == "Sky" and len(train.class_names) == 11
    assert train.source_ids == list(range(11))
    image, labels = train.load(0)
    raw = cv2.imread(train.samples[0].mask_path, cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 2 and raw.max() <= 11
    expected = np.where(raw == 11, 255, raw + 1).astype(np.uint8)
    np.testing.assert_array_equal(labels, expected)
    assert image.shape == (360, 480, 3)


def test_camvid_selection_car_pedestrian(camvid_dir):
    dataset = open_dataset(camvid_dir, "camvid", split="train", classes=["car", "PEDESTRIAN"])
    assert dataset.class_names == ["Car", "Pedestrian"] and dataset.source_ids == [8, 9]
    assert dataset.contract_classes()["colors"] == [[64, 0, 128], [64, 64, 0]]
    seen = set()
    for index in range(0, 60, 12):
        _, labels = dataset.load(index)
        raw = cv2.imread(dataset.samples[index].mask_path, cv2.IMREAD_UNCHANGED)
        assert set(np.unique(labels).tolist()) <= {0, 1, 2, 255}
        np.testing.assert_array_equal(labels == 1, raw == 8)
        np.testing.assert_array_equal(labels == 2, raw == 9)
        np.testing.assert_array_equal(labels == 255, raw == 11)
        seen.update(np.unique(labels).tolist())
    assert {0, 1, 255} <= seen


def test_camvid_tutorial_class_names_are_aliases(camvid_dir):
    dataset = open_dataset(camvid_dir, "camvid", split="train",
                           classes=["sign symbol", "unlabeled", "car"])
    assert dataset.class_names == ["SignSymbol", "Unlabelled", "Car"]
    assert dataset.source_ids == [6, 11, 8]
    _, labels = dataset.load(0)
    raw = cv2.imread(dataset.samples[0].mask_path, cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(labels == 1, raw == 6)
    np.testing.assert_array_equal(labels == 2, raw == 11)   # learned, no longer ignored
    np.testing.assert_array_equal(labels == 3, raw == 8)
    assert (labels == 2).any() and not (labels == 255).any()
    with pytest.raises(NanosegError, match="selected twice"):
        open_dataset(camvid_dir, "camvid", classes=["SignSymbol", "sign_symbol"])
