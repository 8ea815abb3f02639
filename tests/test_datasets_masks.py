"""Image and mask decoding: RGB images without EXIF rotation, binary masks in every encoding
(0/255, 0/1, noisy JPEG, a coloured stroke), --mask-invert and the share of class pixels."""
import os
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from nanoseg.datasets import masks, open_dataset
from nanoseg.errors import NanosegError
from tests.dataset_helpers import nails, square_mask, write_image  # noqa: F401,F811 (fixtures)


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


@pytest.mark.parametrize("encoding", ["0_255_png", "0_1_png", "noisy_3ch_jpeg", "red_on_black"])
def test_flat_binary_mask_encodings(tmp_path, encoding):
    root = str(tmp_path)
    truth = square_mask()
    write_image(os.path.join(root, "images", "a.jpg"), np.full((40, 48, 3), 100, np.uint8))
    if encoding == "0_255_png":
        write_image(os.path.join(root, "masks", "a.png"), truth * 255)
    elif encoding == "0_1_png":
        write_image(os.path.join(root, "masks", "a.png"), truth)
    elif encoding == "noisy_3ch_jpeg":
        write_image(os.path.join(root, "masks", "a.jpg"), cv2.merge([truth * 255] * 3))
    else:
        write_image(os.path.join(root, "masks", "a.png"), cv2.merge([truth * 0, truth * 0,
                                                                 truth * 255]))
    _, labels = open_dataset(root, "flat", "all").load(0)
    if encoding == "noisy_3ch_jpeg":
        raw = cv2.imread(os.path.join(root, "masks", "a.jpg"), cv2.IMREAD_UNCHANGED)
        assert len(np.unique(raw)) > 2                   # JPEG really added noise
    np.testing.assert_array_equal(labels, truth)


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
    image = masks.read_image_rgb(path)
    assert image.shape[:2] == (40, 64)
    assert image[20, 5, 0] > 200 and image[20, 60, 0] < 50
    edge_bgr = cv2.imread(path, IMAGE_READ_FLAGS)
    assert np.array_equal(cv2.cvtColor(edge_bgr, cv2.COLOR_BGR2RGB), image)


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
    text, share = masks.binary_class_summary(inverted)
    assert "the dark value" in text and "'nail'" in text and "of 4 masks" in text
    assert 0.0 < share < 0.5                            # nails cover a few % of the pixels
    text, plain_share = masks.binary_class_summary(plain)
    assert "the bright value" in text and plain_share == pytest.approx(1 - share)
    zero_one = str(tmp_path / "01.png")                 # 0/1 masks: 0 becomes the class
    write_image(zero_one, square_mask(1))
    labels = masks.BinaryMaskDecoder(invert=True)(zero_one)
    np.testing.assert_array_equal(labels, 1 - square_mask(1))


def _nails_pair(nails_dir, root):
    """A one-sample flat copy of nails: (image path, mask path)."""
    name = sorted(os.listdir(os.path.join(nails_dir, "images")))[0]
    paths = []
    for folder in ("images", "labels"):
        os.makedirs(os.path.join(root, folder))
        paths.append(os.path.join(root, folder, name))
        with open(os.path.join(nails_dir, folder, name), "rb") as handle:
            data = handle.read()
        with open(paths[-1], "wb") as handle:
            handle.write(data)
    return paths


@pytest.mark.parametrize("which, word", [(0, "image"), (1, "mask")])
def test_a_truncated_image_or_mask_is_an_error_naming_the_file(nails_dir, tmp_path, which,
                                                               word):
    root = str(tmp_path)
    paths = _nails_pair(nails_dir, root)
    with open(paths[which], "rb") as handle:  # half: OpenCV decodes it, grey below the cut
        data = handle.read(os.path.getsize(paths[which]) // 2)
    with open(paths[which], "wb") as handle:
        handle.write(data)
    dataset = open_dataset(root, "flat", split="all", classes=["nail"])
    with pytest.raises(NanosegError, match=re.escape("{} {} is truncated".format(word, paths[which]))):
        dataset.load(0)
