"""Pairing files by relative path in nested folders, and which split folders count."""
import os
import shutil

import numpy as np

from nanoseg.datasets import open_dataset, pairing
from tests.dataset_helpers import nails, nested_nails, tutorial  # noqa: F401,F811 (fixtures)


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


def test_unlabelled_test_folder_is_not_a_split(tutorial, tmp_path):
    root, _ = tutorial
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    os.makedirs(os.path.join(copy, "test", "images"))
    shutil.copy(os.path.join(copy, "train", "images", sorted(os.listdir(
        os.path.join(copy, "train", "images")))[0]), os.path.join(copy, "test", "images"))
    assert list(pairing.own_split_folders(copy)) == ["train", "val"]
