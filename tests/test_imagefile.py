"""Telling a cut-off image file from a whole one (nanoseg/imagefile.py): OpenCV decodes both."""
import os
import shutil

import cv2
import numpy as np
import pytest

from nanoseg.imagefile import incomplete_reason


def cut(source, target, keep):
    with open(source, "rb") as handle:
        data = handle.read(keep)
    with open(target, "wb") as handle:
        handle.write(data)
    return target


def every_file(folder):
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names
            if name.lower().endswith((".jpg", ".jpeg", ".png"))]


def test_every_real_nails_and_camvid_file_is_whole(nails_dir, camvid_dir):
    files = every_file(nails_dir) + every_file(camvid_dir)
    assert len(files) > 250
    assert [(path, incomplete_reason(path)) for path in files
            if incomplete_reason(path)] == []


def test_a_real_jpeg_cut_short_decodes_but_is_named_incomplete(nails_dir, tmp_path):
    images = os.path.join(nails_dir, "images")
    source = os.path.join(images, sorted(os.listdir(images))[0])
    target = cut(source, str(tmp_path / "cut.jpg"), os.path.getsize(source) // 2)
    assert cv2.imread(target) is not None  # OpenCV does not tell
    assert "EOI" in incomplete_reason(target)


def test_a_real_jpeg_mask_cut_short_is_named_incomplete(nails_dir, tmp_path):
    labels = os.path.join(nails_dir, "labels")
    source = os.path.join(labels, sorted(os.listdir(labels))[0])
    target = cut(source, str(tmp_path / "cut.jpg"), os.path.getsize(source) // 2)
    assert cv2.imread(target, cv2.IMREAD_UNCHANGED) is not None
    assert "EOI" in incomplete_reason(target)


def test_a_real_png_mask_cut_short_is_named_incomplete(camvid_dir, tmp_path):
    annot = os.path.join(camvid_dir, "valannot")
    source = os.path.join(annot, sorted(os.listdir(annot))[0])
    target = cut(source, str(tmp_path / "cut.png"), os.path.getsize(source) // 2)
    assert "IEND" in incomplete_reason(target)


def test_zero_padding_after_the_jpeg_end_marker_is_whole(nails_dir, tmp_path):
    images = os.path.join(nails_dir, "images")
    target = str(tmp_path / "padded.jpg")
    shutil.copy(os.path.join(images, sorted(os.listdir(images))[0]), target)
    with open(target, "ab") as handle:
        handle.write(b"\x00" * 100)
    assert incomplete_reason(target) is None


@pytest.mark.parametrize("extension, word", [(".bmp", "BMP"), (".webp", "WebP")])
def test_bmp_and_webp_cut_short_are_named_incomplete(tmp_path, extension, word):
    whole = str(tmp_path / ("whole" + extension))
    image = np.random.RandomState(0).randint(0, 255, (64, 64, 3)).astype(np.uint8)
    assert cv2.imwrite(whole, image)
    assert incomplete_reason(whole) is None
    target = cut(whole, str(tmp_path / ("cut" + extension)), os.path.getsize(whole) - 20)
    assert word in incomplete_reason(target)
