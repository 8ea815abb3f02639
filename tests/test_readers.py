"""Dataset readers on real files: nails (flat, noisy JPEG masks), camvid-mini, a VOC tree and
nested/CSV layouts built from them, the reproducible split, and a table of bad inputs."""
import csv
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from nanoseg.contract import Contract
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError
from nanoseg import readers
from nanoseg.readers import open_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# CamVid id -> VOC index for the tiny VOC tree: car, pedestrian->person, bicyclist->bicycle,
# Unlabelled -> the VOC border/ignore value; everything else background.
CAMVID_TO_VOC = {8: 7, 9: 15, 10: 2, 11: 255}


def _write(path, array):
    """Write an image with OpenCV, creating folders; fail loudly if it cannot."""
    folder = os.path.dirname(str(path))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    assert cv2.imwrite(str(path), array), path


# -- nails: flat, noisy 3-channel JPEG masks in labels/ ------------------------------------------
@pytest.fixture(scope="module")
def nails(nails_dir):
    """The whole nails set, binary, class 'nail' (opened once per module)."""
    return open_dataset(nails_dir, "flat", split="all", classes=["nail"])


def test_nails_flat_pairs_every_image_with_its_labels_jpeg(nails, nails_dir):
    assert len(nails) == 52
    assert nails.class_names == ["nail"] and nails.source_ids == [1]
    for sample in nails.samples:
        assert os.path.dirname(sample.mask_path) == os.path.join(nails_dir, "labels")
        assert os.path.basename(sample.image_path) == os.path.basename(sample.mask_path)


def test_nails_masks_binarize_to_0_1_at_image_size(nails):
    fractions = []
    for index in range(0, len(nails), 10):   # 6 samples of varied sizes
        image, labels = nails.load(index)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert labels.dtype == np.uint8 and labels.shape == image.shape[:2]
        assert set(np.unique(labels).tolist()) <= {0, 1}
        raw = cv2.imread(nails.samples[index].mask_path, cv2.IMREAD_UNCHANGED)
        assert raw.ndim == 3 and len(np.unique(raw)) > 2        # really noisy 3-channel JPEG
        np.testing.assert_array_equal(labels, (raw.max(axis=2) > 127).astype(np.uint8))
        fractions.append(labels.mean())
    assert all(0.002 < f < 0.3 for f in fractions), fractions
    assert 0.02 < np.mean(fractions) < 0.15, fractions


def test_image_is_rgb_not_bgr(nails):
    image, _ = nails.load(0)
    bgr = cv2.imread(nails.samples[0].image_path)
    np.testing.assert_array_equal(image, bgr[:, :, ::-1])


def test_default_binary_class_name_and_contract_kwargs(nails_dir):
    dataset = open_dataset(nails_dir, "flat", split="val")
    kwargs = dataset.contract_classes()
    assert kwargs == {"class_names": ["object"], "source_ids": [1], "colors": None}
    contract = Contract.create(64, 64, activation="sigmoid",
                               normalization=Normalization.named("scale"), **kwargs)
    assert contract.class_names == ["background", "object"]


def _square_mask(value=1):
    """A 40x48 mask with one rectangle of ``value``."""
    mask = np.zeros((40, 48), np.uint8)
    mask[10:30, 12:36] = value
    return mask


@pytest.mark.parametrize("encoding", ["0_255_png", "0_1_png", "noisy_3ch_jpeg", "red_on_black"])
def test_flat_binary_mask_encodings(tmp_path, encoding):
    root = str(tmp_path)
    truth = _square_mask()
    _write(os.path.join(root, "images", "a.jpg"), np.full((40, 48, 3), 100, np.uint8))
    if encoding == "0_255_png":
        _write(os.path.join(root, "masks", "a.png"), truth * 255)
    elif encoding == "0_1_png":
        _write(os.path.join(root, "masks", "a.png"), truth)
    elif encoding == "noisy_3ch_jpeg":
        _write(os.path.join(root, "masks", "a.jpg"), cv2.merge([truth * 255] * 3))
    else:
        _write(os.path.join(root, "masks", "a.png"), cv2.merge([truth * 0, truth * 0,
                                                                 truth * 255]))
    _, labels = open_dataset(root, "flat", "all").load(0)
    if encoding == "noisy_3ch_jpeg":
        raw = cv2.imread(os.path.join(root, "masks", "a.jpg"), cv2.IMREAD_UNCHANGED)
        assert len(np.unique(raw)) > 2                   # JPEG really added noise
    np.testing.assert_array_equal(labels, truth)


def test_flat_id_masks_with_name_id_classes_and_explicit_folders(tmp_path):
    root = str(tmp_path)
    ids = _square_mask(2)
    ids[0:5, :] = 1
    ids[-2:, :] = 255
    _write(os.path.join(root, "rgb", "a.png"), np.full((40, 48, 3), 100, np.uint8))
    _write(os.path.join(root, "gt", "a.png"), ids)
    dataset = open_dataset(root, "flat", "all", classes=["nail=2", "skin=1"],
                           images_dir="rgb", masks_dir=os.path.join(root, "gt"))
    assert dataset.class_names == ["nail", "skin"] and dataset.source_ids == [2, 1]
    _, labels = dataset.load(0)
    expected = np.zeros_like(ids)
    expected[ids == 2], expected[ids == 1], expected[ids == 255] = 1, 2, 255
    np.testing.assert_array_equal(labels, expected)


# -- camvid-mini -------------------------------------------------------------------------------
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


# -- a tiny VOC tree built from camvid-mini frames -----------------------------------------------
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
    palette = readers.voc_palette().flatten().tolist()
    chosen = source.samples[::10]
    os.makedirs(os.path.join(root, "SegmentationClass"))
    truth = {}
    for sample in chosen:
        name = os.path.basename(sample.name)
        _write(os.path.join(root, "JPEGImages", name + ".jpg"), cv2.imread(sample.image_path))
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
        via_pil = readers.read_voc_indices(path, "pil")
        via_cv2 = readers.read_voc_indices(path, "cv2")
        np.testing.assert_array_equal(via_pil, indices)
        np.testing.assert_array_equal(via_cv2, indices)
    assert any((i == 255).any() for i in truth.values())       # the ignore colour is exercised


def test_voc_rgb_png_goes_through_the_palette(voc_tree, tmp_path):
    root, truth = voc_tree
    name = sorted(truth)[0]
    rgb = readers.voc_palette()[truth[name]]
    path = str(tmp_path / "rgb.png")
    _write(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert Image.open(path).mode == "RGB"
    np.testing.assert_array_equal(readers.read_voc_indices(path, "pil"), truth[name])
    np.testing.assert_array_equal(readers.read_voc_indices(path, "cv2"), truth[name])


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


# -- nested Images/1..4 + Masks/1..4 and CSV manifests built from nails --------------------------
@pytest.fixture(scope="module")
def nested_nails(nails, tmp_path_factory):
    """8 nails pairs in Images/<1..4>/ + Masks/<1..4>/, two masks re-saved as PNG."""
    root = str(tmp_path_factory.mktemp("nested"))
    originals = {}
    for index, sample in enumerate(nails.samples[:8]):
        group = str(index % 4 + 1)
        stem = os.path.splitext(os.path.basename(sample.image_path))[0]
        image_to = os.path.join(root, "Images", group, os.path.basename(sample.image_path))
        os.makedirs(os.path.dirname(image_to), exist_ok=True)
        shutil.copy(sample.image_path, image_to)
        mask_folder = os.path.join(root, "Masks", group)
        os.makedirs(mask_folder, exist_ok=True)
        if index < 2:   # .jpg image with a .png mask
            _write(os.path.join(mask_folder, stem + ".png"), cv2.imread(sample.mask_path))
        else:
            shutil.copy(sample.mask_path, mask_folder)
        originals[group + "/" + stem] = index
    return root, originals


def test_nested_flat_pairs_by_relative_path(nested_nails, nails):
    root, originals = nested_nails
    dataset = open_dataset(root, "flat", split="all", classes="nail")
    assert sorted(s.name for s in dataset.samples) == sorted(originals)
    assert sum(s.mask_path.endswith(".png") for s in dataset.samples) == 2
    for index, sample in enumerate(dataset.samples):
        image, labels = dataset.load(index)
        ref_image, ref_labels = nails.load(originals[sample.name])
        np.testing.assert_array_equal(image, ref_image)
        np.testing.assert_array_equal(labels, ref_labels)


def _rows(dataset_root, originals, relative_to):
    """(image, mask, split) rows of the nested copy; every 4th is 'valid'."""
    rows = []
    for position, name in enumerate(sorted(originals)):
        group, stem = name.split("/")
        image = [f for f in os.listdir(os.path.join(dataset_root, "Images", group))
                 if f.startswith(stem)][0]
        mask = [f for f in os.listdir(os.path.join(dataset_root, "Masks", group))
                if f.startswith(stem)][0]
        rows.append((os.path.relpath(os.path.join(dataset_root, "Images", group, image),
                                     relative_to),
                     os.path.relpath(os.path.join(dataset_root, "Masks", group, mask),
                                     relative_to),
                     "valid" if position % 4 == 0 else "train"))
    return rows


def _write_csv(path, header, rows):
    """A CSV file with an optional header row."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


@pytest.mark.parametrize("style", ["split_column", "train_flag_column", "headerless",
                                   "one_csv_per_split"])
def test_csv_manifest_styles(nested_nails, tmp_path, style):
    root, originals = nested_nails
    folder = str(tmp_path)
    rows = _rows(root, originals, folder)
    if style == "split_column":
        _write_csv(os.path.join(folder, "data.csv"), ["images", "masks", "split"], rows)
    elif style == "train_flag_column":
        _write_csv(os.path.join(folder, "data.csv"), ["images", "masks", "train"],
                   [(i, m, 0 if s == "valid" else 1) for i, m, s in rows])
    elif style == "headerless":
        _write_csv(os.path.join(folder, "data.csv"), None, rows)
    else:
        _write_csv(os.path.join(folder, "train.csv"), ["images", "masks"],
                   [(i, m) for i, m, s in rows if s == "train"])
        _write_csv(os.path.join(folder, "valid.csv"), ["images", "masks"],
                   [(i, m) for i, m, s in rows if s == "valid"])
    target = folder if style == "one_csv_per_split" else os.path.join(folder, "data.csv")
    train = open_dataset(target, "csv", split="train", classes=["nail"])
    val = open_dataset(target, "csv", split="val", classes=["nail"])
    want_val = sorted(os.path.normpath(os.path.join(folder, i)) for i, _, s in rows
                      if s == "valid")
    assert sorted(s.image_path for s in val.samples) == want_val
    assert len(train) + len(val) == len(rows) == 8
    _, labels = val.load(0)
    assert set(np.unique(labels).tolist()) <= {0, 1} and labels.max() == 1


# -- the reproducible split --------------------------------------------------------------------
def test_split_is_seeded_order_independent_and_disjoint(nails):
    train, val = readers.split_samples(nails.samples, 0.2, seed=5)
    again = readers.split_samples(list(reversed(nails.samples)), 0.2, seed=5)
    assert (train, val) == again
    assert len(val) == 10 and len(train) == 42
    assert not set(train) & set(val)
    _, other_val = readers.split_samples(nails.samples, 0.2, seed=6)
    assert set(other_val) != set(val)


def test_split_csv_round_trip(nails_dir, tmp_path):
    split_csv = str(tmp_path / "sub" / "split.csv")
    train = open_dataset(nails_dir, "flat", split="train", seed=3, split_csv=split_csv)
    assert os.path.isfile(split_csv)
    val = open_dataset(nails_dir, "flat", split="val", seed=3, split_csv=split_csv)
    assert len(train) + len(val) == 52 and not set(train.samples) & set(val.samples)
    # the saved split wins over a different seed: that is what makes it reproducible
    val_again = open_dataset(nails_dir, "flat", split="val", seed=99, split_csv=split_csv)
    assert val_again.samples == val.samples
    # ... and yields the dataset's own samples: names do not depend on where the CSV lives
    assert val.samples == open_dataset(nails_dir, "flat", split="val", seed=3).samples
    fresh = open_dataset(nails_dir, "flat", split="val", seed=99)
    assert set(s.name for s in fresh.samples) != set(s.name for s in val.samples)
    # the split CSV is itself a csv-layout dataset
    as_csv = open_dataset(split_csv, "csv", split="val")
    assert [s.image_path for s in as_csv.samples] == [s.image_path for s in val.samples]
    saved = readers.read_split_csv(split_csv)
    assert sorted(saved) == ["train", "val"] and len(saved["train"]) == len(train)


def test_readers_import_no_tensorflow():
    code = "import sys, nanoseg.readers; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.call([sys.executable, "-c", code], cwd=ROOT) == 0


# -- bad inputs: one line, naming the file or class -----------------------------------------------
def _pair(root, name="a", size=(32, 32), mask_value=255, image_ext=".png"):
    """A flat images/ + masks/ pair with a square of ``mask_value``."""
    image = np.full(size + (3,), 90, dtype=np.uint8)
    mask = np.zeros(size, dtype=np.uint8)
    mask[4:12, 4:12] = mask_value
    _write(os.path.join(root, "images", name + image_ext), image)
    _write(os.path.join(root, "masks", name + ".png"), mask)


def _camvid(root, mask):
    """A one-frame CamVid train/ + trainannot/ tree with ``mask``."""
    _write(os.path.join(root, "train", "f.png"), np.zeros(mask.shape + (3,), np.uint8))
    _write(os.path.join(root, "trainannot", "f.png"), mask)


def _garbage(path, data=b"this is not an image"):
    """A file with an image name and non-image bytes."""
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    with open(path, "wb") as handle:
        handle.write(data)


def case_missing_mask(root):
    _pair(root, "a")
    _write(os.path.join(root, "images", "b.png"), np.zeros((8, 8, 3), np.uint8))
    return lambda: open_dataset(root, "flat", "all"), ["b.png", "no mask"]


def case_orphan_mask(root):
    _pair(root, "a")
    _write(os.path.join(root, "masks", "c.png"), np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "flat", "all"), ["c.png", "no image"]


def case_duplicate_stem(root):
    _pair(root, "a")
    _write(os.path.join(root, "images", "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    return lambda: open_dataset(root, "flat", "all"), ["a.jpg", "same name"]


def case_unreadable_image(root):
    _pair(root, "a")
    os.remove(os.path.join(root, "images", "a.png"))
    _garbage(os.path.join(root, "images", "a.jpg"))
    return lambda: open_dataset(root, "flat", "all").load(0), ["a.jpg", "cannot read image"]


def case_corrupt_mask(root):
    _pair(root, "a")
    _garbage(os.path.join(root, "masks", "a.png"), b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    return lambda: open_dataset(root, "flat", "all").load(0), ["a.png", "cannot read mask"]


def case_camvid_id_40(root):
    mask = np.full((16, 16), 3, np.uint8)
    mask[0, 0] = 40
    _camvid(root, mask)
    return lambda: open_dataset(root, "camvid", "train").load(0), \
        [os.path.join("trainannot", "f.png"), "[40]"]


def case_camvid_colour_mask(root):
    _write(os.path.join(root, "train", "f.png"), np.zeros((8, 8, 3), np.uint8))
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[:, :, 2] = 128
    _write(os.path.join(root, "trainannot", "f.png"), colour)
    return lambda: open_dataset(root, "camvid", "train").load(0), ["f.png", "colours"]


def case_unlisted_id(root):
    _pair(root, "a", mask_value=7)
    return lambda: open_dataset(root, "flat", "all", classes=["nail=1"]).load(0), \
        ["a.png", "[7]", "name=id"]


def case_ids_in_binary_mode(root):
    _pair(root, "a", mask_value=3)
    return lambda: open_dataset(root, "flat", "all").load(0), ["a.png", "name=id"]


def case_size_mismatch(root):
    _pair(root, "a")
    _write(os.path.join(root, "masks", "a.png"), np.zeros((16, 20), np.uint8))
    return lambda: open_dataset(root, "flat", "all").load(0), \
        ["a.png", "20x16", "32x32", "same size"]


def case_empty_folders(root):
    os.makedirs(os.path.join(root, "images"))
    os.makedirs(os.path.join(root, "masks"))
    return lambda: open_dataset(root, "flat", "all"), ["images", "no image files"]


def case_empty_root(root):
    return lambda: open_dataset(root, "flat", "all"), ["empty", "images/"]


def case_camvid_on_flat_folder(root):
    _pair(root, "a")
    return lambda: open_dataset(root, "camvid", "train"), \
        ["not a camvid dataset", "trainannot", "images/, masks/", "'flat'"]


def case_voc_on_camvid_folder(root):
    _camvid(root, np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "voc", "train"), ["JPEGImages", "'camvid'"]


def case_camvid_missing_split(root):
    _camvid(root, np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "camvid", "test"), ["'test'", "available splits are train"]


def case_class_not_in_camvid(root):
    _camvid(root, np.zeros((8, 8), np.uint8))
    return lambda: open_dataset(root, "camvid", "train", classes=["car", "giraffe"]), \
        ["'giraffe'", "Pedestrian", "Bicyclist"]


def case_class_not_in_voc(root):
    _write(os.path.join(root, "JPEGImages", "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    _write(os.path.join(root, "SegmentationClass", "x.png"), np.zeros((8, 8), np.uint8))
    _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"x\n")
    return lambda: open_dataset(root, "voc", "train", classes=["unicorn"]), \
        ["'unicorn'", "person", "tvmonitor"]


def case_voc_listed_but_missing(root):
    os.makedirs(os.path.join(root, "JPEGImages"))
    os.makedirs(os.path.join(root, "SegmentationClass"))
    _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"gone\n")
    return lambda: open_dataset(root, "voc", "train"), ["gone.jpg", "train.txt"]


def case_voc_colour_not_in_palette(root):
    _write(os.path.join(root, "JPEGImages", "x.jpg"), np.zeros((8, 8, 3), np.uint8))
    _write(os.path.join(root, "SegmentationClass", "x.png"), np.full((8, 8, 3), 3, np.uint8))
    _garbage(os.path.join(root, "ImageSets", "Segmentation", "train.txt"), b"x\n")
    return lambda: open_dataset(root, "voc", "train").load(0), ["x.png", "(3, 3, 3)"]


def case_csv_missing_file(root):
    _pair(root, "a")
    _write_csv(os.path.join(root, "m.csv"), ["image", "mask", "split"],
               [("images/a.png", "masks/a.png", "train"), ("images/gone.png", "masks/a.png",
                                                            "val")])
    return lambda: open_dataset(os.path.join(root, "m.csv"), "csv", "train"), \
        ["m.csv", "gone.png"]


def case_csv_without_mask_column(root):
    _pair(root, "a")
    os.remove(os.path.join(root, "masks", "a.png"))   # no column and nothing beside images/
    _write_csv(os.path.join(root, "m.csv"), ["image", "weight"], [("images/a.png", "1")])
    return lambda: open_dataset(os.path.join(root, "m.csv"), "csv", "train"), \
        ["m.csv", "mask column", "row 2"]


def case_mask_invert_with_id_classes(root):
    _pair(root, "a", mask_value=1)
    return lambda: open_dataset(root, "flat", "all", classes=["nail=1"], mask_invert=True), \
        ["mask-invert", "nail=1"]


def case_val_and_valid_folders(root):
    for split in ("train", "val", "valid"):
        _pair(os.path.join(root, split), "a")
    return lambda: open_dataset(root, "flat", "train"), ["valid/ and val/", "keep one"]


def case_folder_split_without_test(root):
    for split in ("train", "valid"):
        _pair(os.path.join(root, split), "a")
    return lambda: open_dataset(root, "flat", "test"), ["no test split folder", "train/"]


def case_ambiguous_class_alias(root):
    _camvid(root, np.zeros((4, 4), np.uint8))
    return lambda: open_dataset(root, "camvid", "train", classes=["car", "Car"]), \
        ["selected twice", "'Car'"]


def case_images_dir_flag_wrong(root):
    _pair(root, "a")
    return lambda: open_dataset(root, "flat", "all", images_dir="photos"), \
        ["photos", "images_dir"]


def case_missing_root(root):
    return lambda: open_dataset(os.path.join(root, "nope"), "flat"), ["nope", "not found"]


def case_unknown_layout(root):
    return lambda: open_dataset(root, "coco"), ["'coco'", "flat, csv, camvid, voc"]


def case_flat_test_split(root):
    _pair(root, "a")
    _pair(root, "b")
    return lambda: open_dataset(root, "flat", "test"), ["no test split"]


def case_bad_val_fraction(root):
    _pair(root, "a")
    _pair(root, "b")
    return lambda: open_dataset(root, "flat", "val", val_fraction=1.5), ["val_fraction", "1.5"]


BAD_CASES = [value for key, value in sorted(globals().items()) if key.startswith("case_")]


@pytest.mark.parametrize("build", BAD_CASES, ids=[c.__name__[5:] for c in BAD_CASES])
def test_bad_input_gives_one_line_error_naming_the_thing(build, tmp_path):
    root = str(tmp_path / "data")
    os.makedirs(root)
    action, expected = build(root)
    with pytest.raises(NanosegError) as info:
        action()
    message = str(info.value)
    assert "\n" not in message, message
    for part in expected:
        assert part in message, "{!r} not in {!r}".format(part, message)


def test_exif_rotation_is_ignored_like_the_edge_folder_source(tmp_path):
    """A phone JPEG with EXIF 'rotate 90' stays on its stored pixel grid, as its PNG mask
    does; the edge reads files with the same flags (nanoseg.preprocess.IMAGE_READ_FLAGS)."""
    from nanoseg.preprocess import IMAGE_READ_FLAGS
    stored = np.zeros((40, 64, 3), np.uint8)
    stored[:, :16] = (255, 0, 0)                         # a red band on the left
    exif = Image.Exif()
    exif[0x0112] = 6                                     # Orientation: rotate 90 CW
    path = str(tmp_path / "phone.jpg")
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    assert cv2.imread(path).shape[:2] == (64, 40)        # OpenCV's default applies EXIF
    image = readers.read_image_rgb(path)
    assert image.shape[:2] == (40, 64)
    assert image[20, 5, 0] > 200 and image[20, 60, 0] < 50
    edge_bgr = cv2.imread(path, IMAGE_READ_FLAGS)
    assert np.array_equal(cv2.cvtColor(edge_bgr, cv2.COLOR_BGR2RGB), image)


# -- the nail tutorial's layout: train/ + valid/ folders and csv_file/ CSVs --------------------
@pytest.fixture(scope="module")
def tutorial(nails_dir, tmp_path_factory):
    """ROOT/{train,valid}/{images,masks} + ROOT/csv_file/{train,valid}.csv of real nails."""
    from tests.train_helpers import make_tutorial_layout
    root = str(tmp_path_factory.mktemp("tutorial"))
    return root, make_tutorial_layout(nails_dir, root, train_count=5, valid_count=3)


@pytest.mark.parametrize("where,layout", [("root", "csv"), ("csv_file", "csv"),
                                          ("root", "flat")])
def test_tutorial_layout_keeps_its_own_split(tutorial, nails, where, layout):
    root, chosen = tutorial
    data = root if where == "root" else os.path.join(root, "csv_file")
    by_name = {os.path.basename(s.image_path): i for i, s in enumerate(nails.samples)}
    for split, folder in (("train", "train"), ("val", "valid")):
        dataset = open_dataset(data, layout, split=split, classes=["nail"])
        assert [os.path.basename(s.image_path) for s in dataset.samples] == chosen[folder]
        for index, sample in enumerate(dataset.samples):
            assert sample.image_path == os.path.join(root, folder, "images",
                                                     os.path.basename(sample.image_path))
            assert sample.mask_path == os.path.join(root, folder, "masks",
                                                    os.path.basename(sample.image_path))
        image, labels = dataset.load(0)
        ref_image, ref_labels = nails.load(by_name[os.path.basename(dataset.samples[0]
                                                                    .image_path)])
        np.testing.assert_array_equal(image, ref_image)
        np.testing.assert_array_equal(labels, ref_labels)
    assert len(open_dataset(data, layout, split="all", classes=["nail"])) == 8
    assert readers.detect_layout(root) == "flat"


def test_tutorial_split_folder_alone_is_refused_not_split_again(tutorial):
    root, _ = tutorial
    with pytest.raises(NanosegError) as info:
        open_dataset(os.path.join(root, "train"), "flat", split="train", classes=["nail"])
    message = str(info.value)
    assert "comes split" in message and "--data {}".format(root) in message
    # all of one folder (e.g. scoring it) is still fine
    assert len(open_dataset(os.path.join(root, "valid"), "flat", split="all")) == 3


def test_per_split_csv_names_its_folder_and_val_works_as_a_split(tutorial, nails_dir,
                                                                 tmp_path):
    """A labelled test/ split listed by csv_file/test.csv with train=0 (make_csv_file's flag
    for "not training"), and val/ instead of valid/."""
    root, chosen = tutorial
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    os.rename(os.path.join(copy, "valid"), os.path.join(copy, "val"))
    used = chosen["train"] + chosen["valid"]
    test_names = [n for n in sorted(os.listdir(os.path.join(nails_dir, "images")))
                  if n not in used][:2]
    for kind, source in (("images", "images"), ("masks", "labels")):
        os.makedirs(os.path.join(copy, "test", kind))
        for name in test_names:
            shutil.copy(os.path.join(nails_dir, source, name),
                        os.path.join(copy, "test", kind, name))
    with open(os.path.join(copy, "csv_file", "test.csv"), "w", newline="") as handle:
        handle.write("images,train\n" + "".join(n + ",0\n" for n in test_names))
    for layout in ("csv", "flat"):
        tested = open_dataset(copy, layout, split="test", classes=["nail"])
        assert [s.image_path for s in tested.samples] == [
            os.path.join(copy, "test", "images", n) for n in test_names]
        assert tested.load(1)[1].max() == 1
        val = open_dataset(copy, layout, split="val", classes=["nail"])
        assert [s.image_path for s in val.samples] == [
            os.path.join(copy, "val", "images", n) for n in chosen["valid"]]


def test_one_split_folder_names_split_all_for_scoring_it(tutorial):
    root, _ = tutorial
    with pytest.raises(NanosegError, match=r"valid is one split folder of .*: pass --data .* "
                                           r"or --split all to use this folder alone"):
        open_dataset(os.path.join(root, "valid"), "flat", split="val", classes=["nail"])


def test_an_ambiguous_parent_neither_replaces_nor_blocks_the_error(tutorial, tmp_path):
    """ROOT with both val/ and valid/: the one-split-folder probe of ROOT/train and the
    layout guess of a wrong-layout error skip it instead of raising about it."""
    root, _ = tutorial
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    shutil.copytree(os.path.join(copy, "valid"), os.path.join(copy, "val"))
    assert len(open_dataset(os.path.join(copy, "train"), "flat", split="all")) == 5
    assert len(open_dataset(os.path.join(copy, "train"), "flat", split="train",
                            val_fraction=0.4)) == 3
    with pytest.raises(NanosegError, match=r"copy is not a camvid dataset: expected"):
        open_dataset(copy, "camvid")


def test_small_reader_messages_name_the_fix(tutorial, tmp_path, camvid_dir):
    root, _ = tutorial
    with pytest.raises(NanosegError, match=r"has no test split folder \(test/ or testing/\) "
                                           r".*: use --split train, val or all$"):
        open_dataset(root, "flat", split="test")
    with pytest.raises(NanosegError, match="camvid masks hold class ids: drop --mask-invert$"):
        open_dataset(camvid_dir, "camvid", mask_invert=True)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(NanosegError, match=r"is empty: it needs an image column \(a mask "
                                           r"column too, unless masks/ is beside images/\)$"):
        open_dataset(str(empty), "csv")


def test_unlabelled_test_folder_is_not_a_split(tutorial, tmp_path):
    root, _ = tutorial
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    os.makedirs(os.path.join(copy, "test", "images"))
    shutil.copy(os.path.join(copy, "train", "images", sorted(os.listdir(
        os.path.join(copy, "train", "images")))[0]), os.path.join(copy, "test", "images"))
    assert list(readers.own_split_folders(copy)) == ["train", "val"]


# -- --mask-invert: the dark value is the class -----------------------------------------------
def test_mask_invert_on_inverted_real_masks_gives_the_original_labels(nails_dir, nails,
                                                                      tmp_path):
    from tests.train_helpers import make_tutorial_layout
    root = str(tmp_path / "inverted")
    make_tutorial_layout(nails_dir, root, train_count=4, valid_count=2, invert=True)
    inverted = open_dataset(root, "flat", split="train", classes=["nail"], mask_invert=True)
    plain = open_dataset(root, "flat", split="train", classes=["nail"])
    by_stem = {s.name: i for i, s in enumerate(nails.samples)}
    for index, sample in enumerate(inverted.samples):
        _, ref_labels = nails.load(by_stem[sample.name])
        np.testing.assert_array_equal(inverted.load(index)[1], ref_labels)
        np.testing.assert_array_equal(plain.load(index)[1], 1 - ref_labels)
    text, share = readers.binary_class_summary(inverted)
    assert "the dark value" in text and "'nail'" in text and "of 4 masks" in text
    assert 0.0 < share < 0.5                            # nails cover a few % of the pixels
    text, plain_share = readers.binary_class_summary(plain)
    assert "the bright value" in text and plain_share == pytest.approx(1 - share)
    zero_one = str(tmp_path / "01.png")                 # 0/1 masks: 0 becomes the class
    _write(zero_one, _square_mask(1))
    labels = readers.BinaryMaskDecoder(invert=True)(zero_one)
    np.testing.assert_array_equal(labels, 1 - _square_mask(1))


# -- the tutorials' class names -------------------------------------------------------------
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


def test_voc_human_is_person(voc_tree):
    root, truth = voc_tree
    dataset = open_dataset(root, "voc", split="all", classes=["human"])
    assert dataset.class_names == ["person"] and dataset.source_ids == [15]
    _, labels = dataset.load(0)
    np.testing.assert_array_equal(labels == 1, truth[dataset.samples[0].name] == 15)
