"""The preprocessing contract: what the edge computes from a camera frame is what training saw.

The heart of parity: for every normalization scheme (fixed and per-backbone, including the
caffe-style BGR VGGs), the edge's ``preprocess_image`` of a BGR frame read with cv2 equals,
bit for bit, the validation input the training pipeline makes from the same file, along the
indexable Dataset path and the tf.data path. Plus: the contract JSON round-trips, resizing is
albumentations' Resize exactly, and bad contracts give one-line errors.
"""
import json
import os

import cv2
import numpy as np
import pytest

from nanoseg.contract import CONTRACT_FORMAT, Contract, load_contract, save_contract
from nanoseg.normalization import Normalization
from nanoseg.preprocess import (IMAGE_READ_FLAGS, preprocess_image, probabilities_to_labels, reorder_channels, resize_image, resize_mask)
from nanoseg.errors import NanosegError
from train import keras_env
from train.backbones import backbone_names, normalization_for, resolve_normalization

from nanoseg.evaluation import iterate_validation  # noqa: E402
from train.pipeline import Dataset, make_tf_dataset  # noqa: E402
from nanoseg.datasets import SegmentationDataset, open_dataset  # noqa: E402

SIZE = (96, 128)  # (H, W): not square, so a swapped width/height cannot pass
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


def _contract(normalization_name, backbone, size=SIZE):
    normalization, order = resolve_normalization(normalization_name, backbone)
    return Contract.create(size[0], size[1], ["nail"], "sigmoid", normalization,
                           channel_order=order, backbone=backbone)


def _roundtrip(contract):
    """The contract as the edge gets it: serialized to JSON and parsed back."""
    return Contract.from_dict(json.loads(contract.to_json()))


@pytest.fixture(scope="module")
def nails(nails_dir):
    """A few real nails pairs, read by the project's own flat reader."""
    return _subset(open_dataset(nails_dir, "flat", split="all"), NUM_IMAGES)


def _real_images(nails_dir, camvid_dir):
    """RGB images of several sizes: nails (JPEG, many sizes) and CamVid (480x360 PNG)."""
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:3]
    paths = [os.path.join(nails_dir, "images", n) for n in names]
    paths.append(os.path.join(camvid_dir, "train", sorted(
        os.listdir(os.path.join(camvid_dir, "train")))[0]))
    return [cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in paths]


# -- the parity heart: edge == training validation, bit for bit ------------------------------
@pytest.mark.parametrize("normalization_name,backbone", NORMALIZATION_CASES)
def test_edge_preprocessing_equals_training_validation(nails, normalization_name, backbone):
    contract = _roundtrip(_contract(normalization_name, backbone))
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


def test_backbone_normalization_matches_segmentation_models(nails_dir, camvid_dir):
    sm = keras_env.import_segmentation_models()
    from segmentation_models.backbones.backbones_factory import Backbones
    assert sorted(backbone_names()) == sorted(Backbones.models_names())
    images = [resize_image(im, SIZE) for im in _real_images(nails_dir, camvid_dir)]
    for backbone in backbone_names():
        normalization, order = normalization_for(backbone)
        assert normalization.name.startswith("backbone:")
        reference = sm.get_preprocessing(backbone)
        for image in images:
            expected = np.asarray(reference(image.copy()), dtype=np.float32)
            ours = normalization.apply(reorder_channels(image, "RGB", order))
            assert np.allclose(ours, expected, atol=1e-4), backbone


def test_resolve_normalization_names_and_errors():
    assert resolve_normalization("scale", "vgg16") == (Normalization.named("scale"), "RGB")
    assert resolve_normalization("imagenet", "vgg16")[0] == Normalization.named("imagenet")
    normalization, order = resolve_normalization("backbone", "vgg19")
    assert (normalization.name, order) == ("backbone:caffe", "BGR")
    with pytest.raises(NanosegError, match="unknown normalization 'zscore'"):
        resolve_normalization("zscore", "resnet18")
    with pytest.raises(NanosegError, match="unknown backbone 'resnet19'.*resnet18"):
        resolve_normalization("backbone", "resnet19")


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


# -- JSON round-trip -------------------------------------------------------------------------
def test_contract_json_roundtrip(tmp_path):
    contract = Contract.create(
        256, 320, ["car", "pedestrian"], "softmax", normalization_for("vgg16")[0],
        channel_order="BGR", source_ids=[8, 9], colors=[[64, 0, 128], [64, 64, 0]],
        backbone="vgg16", versions={"tensorflow": "2.15.1"},
        artifacts={"model.h5": {"sha256": "0" * 64}})
    path = str(tmp_path / "contract.json")
    save_contract(contract, path)
    loaded = load_contract(path)
    assert loaded == contract
    assert loaded.to_dict() == contract.to_dict()
    assert set(loaded.to_dict()) == {
        "format", "version", "input", "normalization", "interpolation", "classes",
        "ignore_id", "activation", "threshold", "output_channels", "backbone", "versions",
        "artifacts", "extra"}
    with open(path) as handle:
        assert json.load(handle)["format"] == CONTRACT_FORMAT
    assert loaded.normalization.mean == [103.939, 116.779, 123.68]
    assert loaded.channel_order == "BGR" and loaded.output_channels == 3
    assert [c["source_id"] for c in loaded.classes[1:]] == [8, 9]
    assert not os.path.exists(path + ".tmp{}".format(os.getpid()))


def test_check_compatible_names_the_differing_field():
    contract = _contract("imagenet", "resnet18")
    contract.check_compatible(_roundtrip(contract))
    contract.check_compatible(contract.copy(layout="NCHW"), "ONNX")  # layout may differ
    with pytest.raises(NanosegError, match=r"engine's contract differs .* in threshold"):
        contract.check_compatible(contract.copy(threshold=0.6), "engine")
    with pytest.raises(NanosegError, match="in normalization"):
        contract.check_compatible(_contract("scale", "resnet18"))
    with pytest.raises(NanosegError, match="channel_order, normalization"):
        contract.check_compatible(_contract("backbone", "vgg16"))
    with pytest.raises(NanosegError, match="in height, width"):
        contract.check_compatible(_contract("imagenet", "resnet18", size=(64, 64)))


# -- load_contract: one-line errors --------------------------------------------------------
def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)
    return path


def _good_dict():
    return _contract("scale", "resnet18").to_dict()


LOAD_ERROR_CASES = [
    ("missing", None, "contract not found: .*missing.json"),
    ("bad_json", "{not json", "bad_json.json is not valid JSON"),
    ("not_contract", json.dumps({"format": "onnx"}), "not a nanoseg contract"),
    ("wrong_version", json.dumps(dict(_good_dict(), version=99)), "contract version 99"),
    ("no_input", json.dumps({k: v for k, v in _good_dict().items() if k != "input"}),
     "lacks the field 'input'"),
    ("bad_activation", json.dumps(dict(_good_dict(), activation="relu")),
     "activation must be sigmoid or softmax"),
    ("text_height", json.dumps(dict(_good_dict(), input=dict(_good_dict()["input"],
                                                            height="abc"))),
     "has a field of the wrong type"),
    ("null_classes", json.dumps(dict(_good_dict(), classes=None)),
     "has a field of the wrong type"),
    ("null_threshold", json.dumps(dict(_good_dict(), threshold=None)),
     "has a field of the wrong type"),
    ("class_without_color", json.dumps(dict(_good_dict(), classes=[
        {"id": 0, "name": "background", "color": [0, 0, 0]}, {"id": 1, "name": "nail"}])),
     "needs an integer \"id\", a \"name\" and a \"color\""),
    ("linear_masks", json.dumps(dict(_good_dict(), interpolation={"image": "linear",
                                                                  "mask": "linear"})),
     "mask interpolation must be 'nearest'"),
]
# Errors found by validate() name the bad value, not the file (load_contract's caller does).
VALUE_ERRORS = ("bad_activation", "class_without_color", "linear_masks")


@pytest.mark.parametrize("name,text,message", LOAD_ERROR_CASES,
                         ids=[case[0] for case in LOAD_ERROR_CASES])
def test_load_contract_errors_are_one_line(tmp_path, name, text, message):
    path = str(tmp_path / (name + ".json"))
    if text is not None:
        _write(path, text)
    with pytest.raises(NanosegError, match=message) as info:
        load_contract(path)
    assert "\n" not in str(info.value)
    if name not in VALUE_ERRORS:
        assert path in str(info.value)


# -- reading the output --------------------------------------------------------------------
def test_probabilities_to_labels_sigmoid():
    contract = _contract("scale", "resnet18")
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
