"""The voc layout on a tiny VOC tree built from camvid-mini frames: palette PNGs decode the
same through Pillow and OpenCV, class selection, aliases."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from nanoseg.datasets import open_dataset, voc
from tests.dataset_helpers import write_image


# CamVid id -> VOC index for the tiny VOC tree: car, pedestrian->person, bicyclist->bicycle,
# Unlabelled -> the VOC border/ignore value; everything else background.
CAMVID_TO_VOC = {8: 7, 9: 15, 10: 2, 11: 255}


def _voc_indices(raw):
    """CamVid ids -> the VOC indices the tiny VOC tree stores."""
    out = np.zeros_like(raw)
    for camvid_id, voc_id in CAMVID_TO_VOC.items():
        out[raw == camvid_id] = voc_id
    return out


@pytest.fixture(scope="module")
def voc_tree(camvid_dir, tmp_path_factory):
    """8 camvid frames as JPEGImages + palette PNGs; returns (root, {name: indices})."""
    root = str(tmp_path_factory.mktemp("voc"))
    source = open_dataset(camvid_dir, "camvid", split="all")
    palette = voc.voc_palette().flatten().tolist()
    chosen = source.samples[::10]
    os.makedirs(os.path.join(root, "SegmentationClass"))
    truth = {}
    for sample in chosen:
        name = os.path.basename(sample.name)
        write_image(os.path.join(root, "JPEGImages", name + ".jpg"), cv2.imread(sample.image_path))
        indices = _voc_indices(cv2.imread(sample.mask_path, cv2.IMREAD_UNCHANGED))
        png = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.tobytes())
        png.putpalette(palette)
        png.save(os.path.join(root, "SegmentationClass", name + ".png"))
        truth[name] = indices
    names = sorted(truth)
    lists = os.path.join(root, "ImageSets", "Segmentation")
    os.makedirs(lists)
    with open(os.path.join(lists, "train.txt"), "w") as handle:
        handle.write("\n".join(names[:6]) + "\n")
    with open(os.path.join(lists, "val.txt"), "w") as handle:
        handle.write("\n".join(names[6:]) + "\n")
    return root, truth


def test_voc_palette_png_decodes_the_same_as_indices_and_as_colours(voc_tree):
    root, truth = voc_tree
    for name, indices in truth.items():
        path = os.path.join(root, "SegmentationClass", name + ".png")
        assert Image.open(path).mode == "P"
        assert cv2.imread(path, cv2.IMREAD_UNCHANGED).ndim == 3   # cv2 hands out colours
        via_pil = voc.read_voc_indices(path, "pil")
        via_cv2 = voc.read_voc_indices(path, "cv2")
        np.testing.assert_array_equal(via_pil, indices)
        np.testing.assert_array_equal(via_cv2, indices)
    assert any((i == 255).any() for i in truth.values())       # the ignore colour is exercised


def test_voc_rgb_png_goes_through_the_palette(voc_tree, tmp_path):
    root, truth = voc_tree
    name = sorted(truth)[0]
    rgb = voc.voc_palette()[truth[name]]
    path = str(tmp_path / "rgb.png")
    write_image(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert Image.open(path).mode == "RGB"
    np.testing.assert_array_equal(voc.read_voc_indices(path, "pil"), truth[name])
    np.testing.assert_array_equal(voc.read_voc_indices(path, "cv2"), truth[name])


def test_voc_default_classes_and_labels(voc_tree):
    root, truth = voc_tree
    dataset = open_dataset(root, "voc", split="train")
    assert len(dataset) == 6 and len(dataset.class_names) == 20
    assert dataset.class_names[14] == "person" and dataset.source_ids[14] == 15
    assert dataset.colors[14] == [192, 128, 128]                 # VOC's person colour
    image, labels = dataset.load(0)
    np.testing.assert_array_equal(labels, truth[dataset.samples[0].name])  # label == VOC id
    assert image.shape[:2] == labels.shape


def test_voc_person_only_skips_frames_without_people(voc_tree):
    root, truth = voc_tree
    dataset = open_dataset(root, "voc", split="all", classes=["Person"])
    with_people = sorted(n for n, i in truth.items() if (i == 15).any())
    assert 0 < len(with_people) < len(truth), "the fixture needs frames with and without"
    assert sorted(s.name for s in dataset.samples) == with_people
    assert dataset.class_names == ["person"] and dataset.source_ids == [15]
    for index in range(len(dataset)):
        _, labels = dataset.load(index)
        expected = truth[dataset.samples[index].name]
        assert set(np.unique(labels).tolist()) <= {0, 1, 255}
        np.testing.assert_array_equal(labels == 1, expected == 15)
        np.testing.assert_array_equal(labels == 255, expected == 255)


def test_voc_human_is_person(voc_tree):
    root, truth = voc_tree
    dataset = open_dataset(root, "voc", split="all", classes=["human"])
    assert dataset.class_names == ["person"] and dataset.source_ids == [15]
    _, labels = dataset.load(0)
    np.testing.assert_array_equal(labels == 1, truth[dataset.samples[0].name] == 15)
