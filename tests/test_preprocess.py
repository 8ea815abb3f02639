"""nanoseg/preprocess.py: what the edge computes from a camera frame is what training saw.

The heart of parity: for every normalization scheme (fixed and per-backbone, including the
caffe-style BGR VGGs), the edge's ``preprocess_image`` of a BGR frame read with cv2 equals,
bit for bit, the validation input the training pipeline makes from the same file, along the
indexable Dataset path and the tf.data path. Plus: resizing is albumentations' Resize
exactly, and model outputs become labels by the contract's activation and threshold.
"""
import os

import cv2
import numpy as np
import pytest

from nanoseg.contract import Contract
from nanoseg.datasets import SegmentationDataset, open_dataset
from nanoseg.errors import NanosegError
from nanoseg.evaluation import iterate_validation
from nanoseg.normalization import Normalization
from nanoseg.preprocess import (IMAGE_READ_FLAGS, preprocess_image, probabilities_to_labels,
                                resize_image, resize_mask)
from tests.contract_helpers import SIZE, make_contract, roundtrip
from train.pipeline import Dataset, make_tf_dataset

NUM_IMAGES = 4
# One backbone of each segmentation_models preprocessing mode, plus the fixed schemes.
NORMALIZATION_CASES = [
    ("scale", "resnet18"),
    ("imagenet", "resnet18"),
    ("backbone", "resnet18"),        # identity
    ("backbone", "efficientnetb0"),  # torch: x/255, ImageNet mean/std
    ("backbone", "vgg16"),           # caffe: BGR, minus BGR mean
    ("backbone", "mobilenetv2"),     # tf: x/127.5 - 1
]


def _subset(dataset, count):
    """The first ``count`` samples of a reader's dataset (keeps these tests fast)."""
    return SegmentationDataset(dataset.samples[:count], dataset.class_names,
                               dataset.source_ids, dataset.colors, dataset.mask_decoder,
                               root=dataset.root, layout=dataset.layout, split=dataset.split)


@pytest.fixture(scope="module")
def nails(nails_dir):
    """A few real nails pairs, read by the project's own flat reader."""
    return _subset(open_dataset(nails_dir, "flat", split="all"), NUM_IMAGES)


# -- the parity heart: edge == training validation, bit for bit ------------------------------
@pytest.mark.parametrize("normalization_name,backbone", NORMALIZATION_CASES)
def test_edge_preprocessing_equals_training_validation(nails, normalization_name, backbone):
    contract = roundtrip(make_contract(normalization_name, backbone))
    edge_inputs = [preprocess_image(cv2.imread(s.image_path, IMAGE_READ_FLAGS), contract,
                                    "BGR")
                   for s in nails.samples]
    dataset = Dataset(nails, contract)
    validation = [x for x, _ in iterate_validation(nails, contract)]
    tf_data = make_tf_dataset(nails, contract, batch_size=1, augment=False, shuffle=False,
                              seed=0)
    tf_inputs = [x[0] for x, _ in tf_data.as_numpy_iterator()]
    assert len(tf_inputs) == len(edge_inputs) == NUM_IMAGES
    for i, edge_x in enumerate(edge_inputs):
        assert edge_x.dtype == np.float32 and edge_x.shape == SIZE + (3,)
        assert np.array_equal(edge_x, dataset[i][0]), "Dataset path differs on image %d" % i
        assert np.array_equal(edge_x, validation[i]), "validation iterator differs on %d" % i
        assert tf_inputs[i].dtype == np.float32
        assert np.array_equal(edge_x, tf_inputs[i]), "tf.data path differs on image %d" % i


# -- resize: albumentations' Resize, exactly ---------------------------------------------------
@pytest.mark.parametrize("size", [(96, 128), (256, 256), (333, 517), (64, 48)])
def test_resize_matches_albumentations(nails, camvid_dir, size):
    import albumentations as A
    resize = A.Resize(size[0], size[1])
    pairs = [nails.load(i) for i in range(len(nails))]
    camvid_image = os.path.join(camvid_dir, "train", "0001TP_006690.png")
    camvid_mask = os.path.join(camvid_dir, "trainannot", "0001TP_006690.png")
    pairs.append((cv2.cvtColor(cv2.imread(camvid_image), cv2.COLOR_BGR2RGB),
                  cv2.imread(camvid_mask, cv2.IMREAD_UNCHANGED)))
    for image, mask in pairs:
        expected = resize(image=image, mask=mask)
        assert np.array_equal(resize_image(image, size), expected["image"])
        assert np.array_equal(resize_mask(mask, size), expected["mask"])
        assert set(np.unique(resize_mask(mask, size))) <= set(np.unique(mask))


def test_resize_to_the_same_size_copies_unless_told_not_to(camvid_dir):
    """preprocess_image reads the camera frame only, so it skips the copy (copy=False)."""
    image = cv2.imread(os.path.join(camvid_dir, "train", "0001TP_006690.png"))
    size = image.shape[:2]
    copied = resize_image(image, size)
    assert copied is not image and np.array_equal(copied, image)
    assert not np.shares_memory(copied, image)
    assert resize_image(image, size, copy=False) is image
    smaller = resize_image(image, (90, 120), copy=False)  # a real resize is new anyway
    assert smaller.shape == (90, 120, 3) and np.array_equal(smaller,
                                                            resize_image(image, (90, 120)))


# -- reading the output --------------------------------------------------------------------
def test_probabilities_to_labels_sigmoid():
    contract = make_contract("scale", "resnet18")
    probs = np.array([[0.1, 0.5], [0.51, 0.99]], dtype=np.float32)[:, :, None]
    expected = np.array([[0, 0], [1, 1]], dtype=np.uint8)  # strictly above the threshold
    assert np.array_equal(probabilities_to_labels(probs, contract), expected)
    assert np.array_equal(probabilities_to_labels(probs[None], contract), expected)
    strict = contract.copy(threshold=0.95)
    assert np.array_equal(probabilities_to_labels(probs, strict), [[0, 0], [0, 1]])
    out = probabilities_to_labels(probs, contract)
    assert out.dtype == np.uint8 and out.shape == (2, 2)


def test_probabilities_to_labels_softmax():
    contract = Contract.create(2, 3, ["a", "b"], "softmax", Normalization.named("scale"))
    probs = np.array([
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7]],
        [[0.3, 0.3, 0.4], [0.5, 0.4, 0.1], [0.0, 1.0, 0.0]],
    ], dtype=np.float32)
    labels = probabilities_to_labels(probs, contract)
    assert np.array_equal(labels, [[0, 1, 2], [2, 0, 1]]) and labels.dtype == np.uint8
    with pytest.raises(NanosegError, match="expects HxWx3"):
        probabilities_to_labels(probs[:, :, :2], contract)
