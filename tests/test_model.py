"""train/model.py: Unet building, masked loss, mixed precision, and reloading model.h5."""
import os
import subprocess
import sys

import numpy as np
import pytest

from nanoseg.contract import Contract
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError
from train import model as model_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _contract(size=64, classes=("nail",)):
    activation = "sigmoid" if len(classes) == 1 else "softmax"
    return Contract.create(size, size, list(classes), activation, Normalization.named("scale"),
                           backbone="efficientnetb0")


@pytest.fixture(scope="module")
def effnet_h5(tmp_path_factory):
    """A tiny efficientnetb0 Unet (swish + FixedDropout inside) saved as model.h5."""
    contract = _contract()
    model = model_lib.build_model("efficientnetb0", contract, encoder_weights=None)
    model_lib.compile_model(model, contract)
    folder = tmp_path_factory.mktemp("effnet")
    path = str(folder / "model.h5")
    model.save(path, save_format="h5")
    x = np.random.RandomState(0).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    np.save(str(folder / "x.npy"), x)
    np.save(str(folder / "expected.npy"), model_lib.predict_probabilities(model, x))
    return path


RELOAD_SCRIPT = """
import sys
import numpy as np
from train import keras_env
keras_env.prepare()
from train.model import load_model_for_inference, predict_probabilities
folder = sys.argv[1]
model = load_model_for_inference(folder + "/model.h5")
out = predict_probabilities(model, np.load(folder + "/x.npy"))
diff = float(np.abs(out - np.load(folder + "/expected.npy")).max())
print("max_diff", diff)
print("sm_imported", "segmentation_models" in sys.modules, "efficientnet" in sys.modules)
"""


def test_reload_without_segmentation_models_is_identical(effnet_h5):
    """A fresh process (nothing imported yet) reloads the h5 with only swish/FixedDropout."""
    folder = os.path.dirname(effnet_h5)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [p for p in (os.environ.get("PYTHONPATH"), ROOT) if p]))
    result = subprocess.run([sys.executable, "-c", RELOAD_SCRIPT, folder], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines()
                 if line.startswith(("max_diff", "sm_imported")))
    assert float(lines["max_diff"]) == 0.0
    assert lines["sm_imported"] == "False False"


def test_reload_with_compile_restores_loss_and_metrics(effnet_h5):
    model = model_lib.load_model_for_inference(effnet_h5, compile=True)
    assert model.loss.__name__ == "masked_dice_binary_focal_loss"
    x = np.load(os.path.join(os.path.dirname(effnet_h5), "x.npy"))
    y = np.concatenate([np.ones((2, 64, 64, 1), np.float32)] * 2, axis=-1)
    results = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(results) == {"loss", "iou_score", "f1_score"}
    assert all(np.isfinite(v) for v in results.values())


def test_masked_loss_ignores_invalid_pixels():
    """Changing predictions only where the validity channel is 0 must not change the loss."""
    import tensorflow as tf
    objects = model_lib.training_objects()
    rng = np.random.RandomState(1)
    target = (rng.rand(2, 16, 16, 1) > 0.5).astype(np.float32)
    valid = np.ones_like(target)
    valid[:, :8] = 0.0
    y = tf.constant(np.concatenate([target, valid], axis=-1))
    pred_a = rng.uniform(0.05, 0.95, target.shape).astype(np.float32)
    pred_b = pred_a.copy()
    pred_b[:, :8] = 1.0 - pred_b[:, :8]
    for name in ("masked_dice_binary_focal_loss", "iou_score", "f1_score"):
        a = float(objects[name](y, tf.constant(pred_a)))
        b = float(objects[name](y, tf.constant(pred_b)))
        assert a == pytest.approx(b, abs=1e-6), name
    changed = pred_a.copy()
    changed[:, 8:] = 1.0 - changed[:, 8:]
    assert float(objects["masked_dice_binary_focal_loss"](y, tf.constant(changed))) != \
        pytest.approx(float(objects["masked_dice_binary_focal_loss"](y, tf.constant(pred_a))))


def test_mixed_precision_output_float32_and_policy_restored():
    import tensorflow as tf
    contract = _contract(classes=("a", "b"))
    model = model_lib.build_model("mobilenetv2", contract, encoder_weights=None,
                                  mixed_precision=True)
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    assert model.layers[-1].dtype_policy.name == "float32"
    assert any(layer.dtype_policy.name == "mixed_float16" for layer in model.layers)
    model_lib.compile_model(model, contract)
    assert isinstance(model.optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
    x = np.random.RandomState(2).rand(2, 64, 64, 3).astype(np.float32)
    labels = np.random.RandomState(3).randint(0, 3, (2, 64, 64))
    y = np.concatenate([np.eye(3, dtype=np.float32)[labels], np.ones((2, 64, 64, 1),
                                                                     np.float32)], axis=-1)
    out = model(x)          # (a full loss-scaled training run: tests/test_train.py camvid)
    assert out.dtype == tf.float32 and out.shape == (2, 64, 64, 3)
    assert np.isfinite(float(model.compiled_loss(tf.constant(y), out)))


def test_softmax_and_sigmoid_channels():
    sigmoid = model_lib.build_model("resnet18", _contract(), encoder_weights=None)
    assert sigmoid.output_shape == (None, 64, 64, 1)
    assert sigmoid.layers[-1].get_config()["activation"] == "sigmoid"
    softmax = model_lib.build_model("resnet18", _contract(classes=("a", "b", "c")),
                                    encoder_weights=None)
    assert softmax.output_shape == (None, 64, 64, 4)


def test_efficientnetb4_at_384_still_builds():
    model = model_lib.build_model("efficientnetb4", _contract(size=384), encoder_weights=None)
    assert model.input_shape == (None, 384, 384, 3)


def test_bad_backbone_size_and_missing_model(tmp_path):
    with pytest.raises(NanosegError, match="unknown --backbone 'mobilenetv3'.*efficientnetb0"):
        model_lib.build_model("mobilenetv3", _contract(), encoder_weights=None)
    with pytest.raises(NanosegError, match="--size 60 60 must be.*try 64 64"):
        model_lib.build_model("resnet18", _contract(size=60), encoder_weights=None)
    with pytest.raises(NanosegError, match="model file not found"):
        model_lib.load_model_for_inference(str(tmp_path / "nope.h5"))


def test_offline_message_names_the_file():
    text = ("URL fetch failure on https://github.com/qubvel/classification_models/releases/"
            "download/0.0.1/resnet18_imagenet_1000_no_top.h5: None -- [Errno -2] Name or "
            "service not known")
    message = model_lib.offline_weights_message("resnet18", text)
    assert "resnet18_imagenet_1000_no_top.h5" in message and "--encoder-weights none" in message
    assert "\n" not in message


def test_flops_counter_matches_published_mobilenetv2():
    """MobileNetV2 (224x224, 1000 classes) is published at 300M multiply-adds."""
    import tensorflow as tf
    from train.flops import count
    result = count(tf.keras.applications.MobileNetV2(weights=None))
    assert 295e6 < result["macs"] < 305e6
    assert result["params"] == 3538984


def test_local_encoder_weights_file_is_loaded_and_a_foreign_one_refused(tmp_path):
    """--encoder-weights FILE (the offline alternative to 'imagenet'): the encoder starts
    from the file's weights; another backbone's file is a one-line error."""
    import tensorflow as tf
    from train import keras_env
    sm = keras_env.import_segmentation_models()
    tf.keras.utils.set_random_seed(123)
    keras_modules = dict(backend=tf.keras.backend, layers=tf.keras.layers,
                         models=tf.keras.models, utils=tf.keras.utils)   # what sm injects
    encoder = sm.Backbones.get_backbone("mobilenetv2", input_shape=(None, None, 3),
                                        weights=None, include_top=False, **keras_modules)
    path = str(tmp_path / "mobilenet_v2_no_top.h5")
    encoder.save_weights(path)
    contract = _contract()
    tf.keras.utils.set_random_seed(7)                 # fresh layers would differ from it
    model = model_lib.build_model("mobilenetv2", contract, encoder_weights=path)
    expected = encoder.get_layer("Conv1").get_weights()[0]
    assert np.array_equal(model.get_layer("Conv1").get_weights()[0], expected)
    tf.keras.utils.set_random_seed(7)
    scratch = model_lib.build_model("mobilenetv2", contract, encoder_weights=None)
    assert not np.array_equal(scratch.get_layer("Conv1").get_weights()[0], expected)
    with pytest.raises(NanosegError, match="does not fit backbone resnet18") as info:
        model_lib.build_model("resnet18", contract, encoder_weights=path)
    assert "\n" not in str(info.value)
