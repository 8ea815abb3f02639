"""convert/import_model.py: models saved by plain segmentation_models code, as the tutorials
write it (not by train/train.py), become bundles the usual chain exports and runs."""
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from convert import import_model
from nanoseg.bundle import Bundle
from nanoseg.errors import NanosegError

SIZE = 64


# -- models as the tutorials make them ------------------------------------------------------
def nail_tutorial_h5(path):
    """The nail tutorial's create_model(): mixed precision, an EfficientNet Unet with a linear
    output and a separate float32 sigmoid head, compiled with sm's loss and metrics, saved
    whole with model.save()."""
    import segmentation_models as sm
    import tensorflow as tf
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        base = sm.Unet("efficientnetb0", input_shape=(SIZE, SIZE, 3), classes=1,
                       activation="linear", encoder_weights=None)
        outputs = tf.keras.layers.Activation("sigmoid", dtype="float32")(base.output)
        model = tf.keras.Model(base.input, outputs)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    model.compile("adam", loss=sm.losses.DiceLoss() + sm.losses.BinaryFocalLoss(),
                  metrics=[sm.metrics.iou_score, sm.metrics.f1_score])
    model.save(str(path))
    return model


def camvid_tutorial_weights(path, arch="FPN"):
    """The CamVid tutorial: softmax over its classes with background as the LAST channel,
    saved with model.save_weights() (its 'best_model.h5')."""
    import segmentation_models as sm
    model = getattr(sm, arch)("mobilenetv2", input_shape=(SIZE, SIZE, 3), classes=3,
                              activation="softmax", encoder_weights=None)
    model.compile("adam", sm.losses.categorical_focal_dice_loss, metrics=[sm.metrics.iou_score])
    model.save_weights(str(path))
    return model


def json_and_weights(folder):
    """A size-free sigmoid Unet kept as model.to_json() + model.save_weights()."""
    import segmentation_models as sm
    model = sm.Unet("resnet18", input_shape=(None, None, 3), classes=1, activation="sigmoid",
                    encoder_weights=None)
    json_path, weights_path = folder / "model.json", folder / "weights.h5"
    json_path.write_text(model.to_json())
    model.save_weights(str(weights_path))
    return model, str(json_path), str(weights_path)


def run_import(*argv):
    args = import_model.parse_args([str(a) for a in argv])
    return import_model.import_model(args)


def predict(model, images):
    return np.asarray(model(np.asarray(images, np.float32), training=False))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from train import keras_env
    keras_env.prepare()
    folder = tmp_path_factory.mktemp("byom-models")
    made = {"folder": folder}
    made["h5_model"] = nail_tutorial_h5(folder / "nails.h5")
    made["weights_model"] = camvid_tutorial_weights(folder / "best_model.h5")
    made["json_model"], made["json"], made["json_weights"] = json_and_weights(folder)
    return made


@pytest.fixture(scope="module")
def nail_pictures(nails_dir, tmp_path_factory):
    """Eight real nails pictures and masks, scaled down (golden images and mIoU)."""
    root = tmp_path_factory.mktemp("nail-pictures")
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:8]
    for kind, source in (("images", "images"), ("masks", "labels")):
        os.makedirs(str(root / kind))
        for name in names:
            image = cv2.imread(os.path.join(nails_dir, source, name), cv2.IMREAD_COLOR)
            small = cv2.resize(image, (160, 120), interpolation=cv2.INTER_AREA if kind ==
                               "images" else cv2.INTER_NEAREST)
            stem = os.path.splitext(name)[0]
            assert cv2.imwrite(str(root / kind / (stem + ".png")), small)
    return str(root / "images"), str(root / "masks")


# -- a, b, c ----------------------------------------------------------------------------------
def test_a_full_h5_from_the_nail_tutorial_becomes_a_bundle_that_exports_and_runs(
        models, nail_pictures, tmp_path):
    from convert import export_onnx
    from train.model import load_model_for_inference
    import nanoseg
    images, masks = nail_pictures
    out = tmp_path / "nails"
    bundle, report = run_import("--h5", models["folder"] / "nails.h5", "--classes", "nail",
                                "--images", images, "--masks", masks, "--out", out)
    contract = Bundle(bundle).contract()
    assert (contract.activation, contract.size, contract.class_names) == \
        ("sigmoid", (SIZE, SIZE), ["background", "nail"])
    assert contract.normalization.name == "backbone:torch"   # the EfficientNet, recognised
    assert contract.extra["imported"]["form"] == "h5"
    assert 0.0 <= report["miou"] <= 1.0
    assert json.load(open(os.path.join(bundle, "evaluation.json")))["miou"] == report["miou"]
    model = load_model_for_inference(os.path.join(bundle, "model.h5"))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    x = np.random.RandomState(0).uniform(-2, 2, (2, SIZE, SIZE, 3))
    # the tutorial model computes in float16; the bundle's float32 twin has its weights
    assert np.abs(predict(model, x) - predict(models["h5_model"], x)).max() < 0.02
    export_onnx.main(export_onnx.parse_args(["--bundle", bundle, "--golden", "3"]))
    parity = json.load(open(os.path.join(bundle, "parity.json")))
    assert parity["onnx"]["max_abs_diff"] < 1e-4
    assert len(np.load(os.path.join(bundle, "golden.npz"))["names"]) == 3
    frame = cv2.imread(os.path.join(images, sorted(os.listdir(images))[0]))
    with nanoseg.load(bundle, backend="onnxruntime") as seg:
        assert seg.labels(frame).shape == frame.shape[:2]


def test_b_weights_with_architecture_flags_put_background_first(models, nail_pictures,
                                                                tmp_path):
    from convert import export_onnx
    from train.model import load_model_for_inference
    images, _ = nail_pictures
    bundle, report = run_import(
        "--weights", models["folder"] / "best_model.h5", "--arch", "fpn", "--backbone",
        "mobilenetv2", "--activation", "softmax", "--size", SIZE, SIZE,
        "--classes", "car", "road", "background", "--images", images,
        "--out", tmp_path / "street")
    assert report is None    # no masks: no mIoU
    contract = Bundle(bundle).contract()
    assert contract.class_names == ["background", "car", "road"]
    assert contract.normalization.name == "backbone:tf"
    model = load_model_for_inference(os.path.join(bundle, "model.h5"))
    x = np.random.RandomState(1).uniform(-1, 1, (2, SIZE, SIZE, 3))
    expected = predict(models["weights_model"], x)[..., [2, 0, 1]]
    assert np.array_equal(predict(model, x), expected)      # a permutation, exact
    export_onnx.main(export_onnx.parse_args(["--bundle", bundle, "--golden", "2"]))
    assert json.load(open(os.path.join(bundle, "parity.json")))["onnx"]["max_abs_diff"] < 1e-4


def test_c_json_and_weights_of_a_size_free_model_run_at_the_size_given(models, tmp_path):
    from train.model import load_model_for_inference
    argv = ["--json", models["json"], "--weights", models["json_weights"], "--classes",
            "nail", "--out", tmp_path / "free"]
    with pytest.raises(NanosegError, match=r"any input size .*pass --size H W"):
        run_import(*argv)
    bundle, _ = run_import(*(argv + ["--size", 64, 96]))
    contract = Bundle(bundle).contract()
    assert contract.size == (64, 96)
    assert contract.normalization.name == "backbone:identity"   # resnet: bn_data inside
    model = load_model_for_inference(os.path.join(bundle, "model.h5"))
    assert tuple(model.input_shape) == (None, 64, 96, 3)
    x = np.random.RandomState(2).uniform(0, 255, (1, 64, 96, 3))
    assert np.array_equal(predict(model, x), predict(models["json_model"], x))


@pytest.mark.parametrize("arch", ["Unet", "FPN", "Linknet", "PSPNet"])
def test_every_segmentation_models_architecture_imports_from_a_full_h5(arch, tmp_path):
    import segmentation_models as sm
    model = getattr(sm, arch)("mobilenetv2", input_shape=(96, 96, 3), classes=1,
                              activation="sigmoid", encoder_weights=None)
    model.compile("adam", sm.losses.bce_jaccard_loss, metrics=[sm.metrics.iou_score])
    model.save(str(tmp_path / "model.h5"))
    bundle, _ = run_import("--h5", tmp_path / "model.h5", "--classes", "nail",
                           "--out", tmp_path / "bundle")
    from train.model import load_model_for_inference
    imported = load_model_for_inference(os.path.join(bundle, "model.h5"))
    x = np.random.RandomState(3).uniform(-1, 1, (1, 96, 96, 3))
    assert np.array_equal(predict(imported, x), predict(model, x))


# -- one line for each mismatch -----------------------------------------------------------------
@pytest.fixture(scope="module")
def camvid_full_h5(models):
    path = models["folder"] / "camvid_full.h5"
    models["weights_model"].save(str(path))
    return str(path)


@pytest.mark.parametrize("argv, message", [
    (["--classes", "car", "background"], r"names 2 classes but the model has 3 output"),
    (["--classes", "car", "road", "sky"], r"exactly one channel 'background'"),
    (["--classes", "car", "road", "background", "--activation", "sigmoid"],
     r"--activation sigmoid differs from the model's last layer .* \(softmax\)"),
    (["--classes", "car", "road", "background", "--size", "128", "128"],
     r"--size 128 128 differs from the model's input 64 64"),
])
def test_a_flag_that_contradicts_the_model_is_refused_in_one_line(camvid_full_h5, tmp_path,
                                                                  argv, message):
    with pytest.raises(NanosegError, match=message) as caught:
        run_import("--h5", camvid_full_h5, "--out", tmp_path / "b", *argv)
    assert "\n" not in str(caught.value)
    assert not os.path.exists(str(tmp_path / "b"))


def test_a_weights_only_file_given_as_h5_says_to_pass_weights(models, tmp_path):
    with pytest.raises(NanosegError, match=r"holds weights only .*pass it as --weights"):
        run_import("--h5", models["folder"] / "best_model.h5", "--classes", "x",
                   "--out", tmp_path / "b")


def test_weights_that_do_not_fit_the_architecture_name_the_flags_to_check(models, tmp_path):
    with pytest.raises(NanosegError, match=r"do not fit --arch unet --backbone mobilenetv2"):
        run_import("--weights", models["folder"] / "best_model.h5", "--arch", "unet",
                   "--backbone", "mobilenetv2", "--activation", "softmax", "--size", SIZE,
                   SIZE, "--classes", "car", "road", "background", "--out", tmp_path / "b")


def test_weights_alone_ask_for_every_missing_architecture_flag(tmp_path):
    weights = tmp_path / "w.h5"
    weights.write_bytes(b"x")
    with pytest.raises(NanosegError, match=r"needs the architecture: pass --backbone "
                                           r"--activation --size"):
        run_import("--weights", weights, "--arch", "unet", "--classes", "x",
                   "--out", tmp_path / "b")


def test_a_model_without_a_known_encoder_asks_for_the_normalization(tmp_path):
    import tensorflow as tf
    inputs = tf.keras.Input((32, 32, 3))
    outputs = tf.keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    tf.keras.Model(inputs, outputs).save(str(tmp_path / "plain.h5"))
    argv = ["--h5", tmp_path / "plain.h5", "--classes", "x", "--out", tmp_path / "b"]
    with pytest.raises(NanosegError, match=r"pass --backbone NAME .* or --normalization"):
        run_import(*argv)
    bundle, _ = run_import(*(argv + ["--normalization", "scale"]))
    assert Bundle(bundle).contract().normalization.name == "scale"
