"""Normalization by table (one cv2.LUT pass) gives the very bits of the float32 formula.

Runs in the desktop suite and under Python 3.6 / numpy 1.19.5 / OpenCV 4.1.1 (through
tests/test_python36.py): the table and cv2.LUT must agree on both, for every uint8 value in
every channel and on real frames.
"""
import glob
import os
import struct

import cv2
import numpy as np
import pytest

from nanoseg.contract import Contract
from nanoseg.normalization import Normalization
from nanoseg.preprocess import preprocess_image, resize_image

SCHEMES = [Normalization.named("scale"), Normalization.named("imagenet"),
           Normalization("backbone:tf", 1.0 / 127.5, (1.0, 1.0, 1.0), (1.0, 1.0, 1.0)),
           Normalization("backbone:caffe", 1.0, (103.939, 116.779, 123.68), (1.0, 1.0, 1.0)),
           Normalization("odd", 0.7, (3.3, -1.25, 0.001), (0.3, 7.0, 1e-3))]


def formula(normalization, image):
    """The contract's definition, spelled out: float32 ``(x * scale - mean) / std``."""
    x = image.astype(np.float32)
    x *= np.float32(normalization.scale)
    x -= np.asarray(normalization.mean, dtype=np.float32)
    x /= np.asarray(normalization.std, dtype=np.float32)
    return x


def same_bits(a, b):
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and \
        np.array_equal(a.view(np.uint32), b.view(np.uint32))


def to_float32(value):
    """A Python float (IEEE double) rounded to the nearest float32, as a Python float."""
    return struct.unpack("f", struct.pack("f", value))[0]


def independent_value(x, scale, mean, std):
    """float32 ``(x * scale - mean) / std`` without numpy: each operation in double, then
    rounded to float32. That is the correctly rounded float32 result of each operation
    (the product and the difference are exact in double; for the quotient, double rounding
    through 53 bits is harmless for 24-bit results since 53 >= 2 * 24 + 2, Figueroa 1995)."""
    s, m, d = to_float32(scale), to_float32(mean), to_float32(std)
    return to_float32(to_float32(to_float32(x * s) - m) / d)


def independent_table(normalization):
    return np.array([[[independent_value(x, normalization.scale, normalization.mean[c],
                                         normalization.std[c]) for c in range(3)]
                      for x in range(256)]], dtype=np.float32)


@pytest.mark.parametrize("normalization", SCHEMES, ids=lambda n: n.name)
def test_every_uint8_value_in_every_channel_is_bit_identical(normalization):
    table = normalization.table()
    assert table.shape == (1, 256, 3)
    assert same_bits(table, independent_table(normalization))
    values = np.arange(256, dtype=np.uint8)
    image = np.stack([values, values[::-1], np.roll(values, 77)], axis=1)[None]  # 1x256x3
    assert same_bits(formula(normalization, image), np.stack(
        [independent_table(normalization)[0, image[0, :, c], c] for c in range(3)],
        axis=1)[None])
    assert same_bits(normalization.apply(image), formula(normalization, image))


def test_table_entries_computed_by_hand():
    scale = Normalization.named("scale").table()[0]
    assert scale[0].tolist() == [0.0] * 3 and scale[255].tolist() == [1.0] * 3
    assert abs(scale[51, 1] - 0.2) < 1e-7  # 51 / 255
    imagenet = Normalization.named("imagenet").table()[0]  # RGB mean / std of ImageNet
    expected = {(0, 0): -0.485 / 0.229, (255, 0): (1 - 0.485) / 0.229,
                (0, 1): -0.456 / 0.224, (255, 2): (1 - 0.406) / 0.225,
                (128, 1): (128 / 255.0 - 0.456) / 0.224}
    for (x, channel), value in expected.items():
        assert abs(imagenet[x, channel] - value) < 2e-6, (x, channel)


@pytest.fixture(scope="module")
def street_frames(camvid_dir):
    paths = sorted(glob.glob(os.path.join(camvid_dir, "train", "*.png")))[:8]
    return [cv2.imread(p, cv2.IMREAD_COLOR) for p in paths]


@pytest.mark.parametrize("normalization", SCHEMES[:3], ids=lambda n: n.name)
def test_real_frames_preprocess_to_the_formula_bit_for_bit(street_frames, normalization):
    contract = Contract.create(96, 128, ["road"], "sigmoid", normalization)
    for frame in street_frames:
        resized = cv2.cvtColor(resize_image(frame, contract.size), cv2.COLOR_BGR2RGB)
        expected = formula(normalization, resized)
        assert same_bits(preprocess_image(frame, contract, "BGR"), expected)
        buffer = np.full((1, 96, 128, 3), np.nan, np.float32)  # a backend's input array
        out = preprocess_image(frame, contract, "BGR", out=buffer[0])
        assert np.shares_memory(out, buffer) and same_bits(buffer[0], expected)
