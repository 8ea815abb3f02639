"""The flat layout on real nails: pairing images with masks, id masks with name=id classes,
and the nail tutorial's train/ + valid/ folders kept as its split."""
import os
import shutil

import numpy as np
import pytest

from nanoseg.contract import Contract
from nanoseg.datasets import detect_layout, open_dataset
from nanoseg.errors import NanosegError
from nanoseg.normalization import Normalization
from tests.dataset_helpers import (nails, square_mask, tutorial,  # noqa: F401,F811 (fixtures)
                                   write_image)


def test_nails_flat_pairs_every_image_with_its_labels_jpeg(nails, nails_dir):
    assert len(nails) == 52
    assert nails.class_names == ["nail"] and nails.source_ids == [1]
    for sample in nails.samples:
        assert os.path.dirname(sample.mask_path) == os.path.join(nails_dir, "labels")
        assert os.path.basename(sample.image_path) == os.path.basename(sample.mask_path)


def test_default_binary_class_name_and_contract_kwargs(nails_dir):
    dataset = open_dataset(nails_dir, "flat", split="val")
    kwargs = dataset.contract_classes()
    assert kwargs == {"class_names": ["object"], "source_ids": [1], "colors": None}
    contract = Contract.create(64, 64, activation="sigmoid",
                               normalization=Normalization.named("scale"), **kwargs)
    assert contract.class_names == ["background", "object"]


def test_flat_id_masks_with_name_id_classes_and_explicit_folders(tmp_path):
    root = str(tmp_path)
    ids = square_mask(2)
    ids[0:5, :] = 1
    ids[-2:, :] = 255
    write_image(os.path.join(root, "rgb", "a.png"), np.full((40, 48, 3), 100, np.uint8))
    write_image(os.path.join(root, "gt", "a.png"), ids)
    dataset = open_dataset(root, "flat", "all", classes=["nail=2", "skin=1"],
                           images_dir="rgb", masks_dir=os.path.join(root, "gt"))
    assert dataset.class_names == ["nail", "skin"] and dataset.source_ids == [2, 1]
    _, labels = dataset.load(0)
    expected = np.zeros_like(ids)
    expected[ids == 2], expected[ids == 1], expected[ids == 255] = 1, 2, 255
    np.testing.assert_array_equal(labels, expected)


@pytest.mark.parametrize("classes,message", [
    (["nail=1", "nail=2"], "class name 'nail' repeats 'nail' in nail=1 nail=2: give each class "
                           "its own name"),
    (["nail=1", "Nail=2"], "class name 'Nail' repeats 'nail' in nail=1 Nail=2"),
    (["background=1"], r"class name 'background' repeats background \(label 0\)"),
], ids=["same", "case", "background"])
def test_two_classes_with_one_name_are_refused_in_one_line(nails_dir, classes, message):
    with pytest.raises(NanosegError, match=message):
        open_dataset(nails_dir, "flat", split="val", classes=classes)


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
    assert detect_layout(root) == "flat"


def test_tutorial_split_folder_alone_is_refused_not_split_again(tutorial):
    root, _ = tutorial
    with pytest.raises(NanosegError) as info:
        open_dataset(os.path.join(root, "train"), "flat", split="train", classes=["nail"])
    message = str(info.value)
    assert "comes split" in message and "--data {}".format(root) in message
    # all of one folder (e.g. scoring it) is still fine
    assert len(open_dataset(os.path.join(root, "valid"), "flat", split="all")) == 3


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
