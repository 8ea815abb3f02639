"""Shared by the tests/test_datasets_*.py files: image writing and fixtures of real nails data
(the whole set, a nested Images/<n>/ copy, the nail tutorial's split folders and CSVs)."""
import csv
import os
import shutil

import cv2
import numpy as np
import pytest

from nanoseg.datasets import open_dataset


def write_image(path, array):
    """Write an image with OpenCV, creating folders; fail loudly if it cannot."""
    folder = os.path.dirname(str(path))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    assert cv2.imwrite(str(path), array), path


def square_mask(value=1):
    """A 40x48 mask with one rectangle of ``value``."""
    mask = np.zeros((40, 48), np.uint8)
    mask[10:30, 12:36] = value
    return mask


def write_csv(path, header, rows):
    """A CSV file with an optional header row."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def nails(nails_dir):
    """The whole nails set, binary, class 'nail' (opened once per module)."""
    return open_dataset(nails_dir, "flat", split="all", classes=["nail"])


@pytest.fixture(scope="module")
def nested_nails(nails_dir, tmp_path_factory):
    """8 nails pairs in Images/<1..4>/ + Masks/<1..4>/, two masks re-saved as PNG; with the
    index of each in the whole set (the ``nails`` fixture's order)."""
    root = str(tmp_path_factory.mktemp("nested"))
    originals = {}
    every = open_dataset(nails_dir, "flat", split="all", classes=["nail"])
    for index, sample in enumerate(every.samples[:8]):
        group = str(index % 4 + 1)
        stem = os.path.splitext(os.path.basename(sample.image_path))[0]
        image_to = os.path.join(root, "Images", group, os.path.basename(sample.image_path))
        os.makedirs(os.path.dirname(image_to), exist_ok=True)
        shutil.copy(sample.image_path, image_to)
        mask_folder = os.path.join(root, "Masks", group)
        os.makedirs(mask_folder, exist_ok=True)
        if index < 2:   # .jpg image with a .png mask
            write_image(os.path.join(mask_folder, stem + ".png"), cv2.imread(sample.mask_path))
        else:
            shutil.copy(sample.mask_path, mask_folder)
        originals[group + "/" + stem] = index
    return root, originals


@pytest.fixture(scope="module")
def tutorial(nails_dir, tmp_path_factory):
    """ROOT/{train,valid}/{images,masks} + ROOT/csv_file/{train,valid}.csv of real nails."""
    from tests.train_helpers import make_tutorial_layout
    root = str(tmp_path_factory.mktemp("tutorial"))
    return root, make_tutorial_layout(nails_dir, root, train_count=5, valid_count=3)
