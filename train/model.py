"""The Unet, its masked loss and metrics, precision handling and reloading.

``build_model`` wraps ``segmentation_models.Unet`` for every backbone it offers; the output
follows the contract (sigmoid: 1 channel; softmax: background + classes). Targets carry a
validity channel (train/pipeline.py ``encode_target``), so the loss and the metrics see only
pixels that are not the ignore id. ``load_model_for_inference`` reloads ``model.h5`` without
segmentation_models: the Jetson-side tools and the converters should not need it.

TensorFlow is imported inside functions: importing this module stays cheap and does not fix
the Keras flavour before ``train.keras_env.prepare()`` ran.
"""
import contextlib
import logging
import os
import re
import warnings

from nanoseg.errors import NanosegError
from train import backbones, keras_env

LOG = logging.getLogger(__name__)

DEFAULT_BACKBONE = "mobilenetv2"
DEFAULT_SIZE = (256, 256)
SIZE_MULTIPLE = 32          # five 2x poolings in every sm encoder
LOSS_NAMES = {"sigmoid": "masked_dice_binary_focal_loss",
              "softmax": "masked_dice_categorical_focal_loss"}
IOU_NAME = "iou_score"
FSCORE_NAME = "f1_score"
METRIC_THRESHOLD = 0.5
WEIGHTS_CACHE_HINT = "$KERAS_HOME/models (default ~/.keras/models)"


# -- backbones ----------------------------------------------------------------------------
def check_backbone(backbone):
    """Raise a one-line error listing the choices for an unknown backbone (no TF needed)."""
    names = sorted(backbones.backbone_names())
    if backbone not in names:
        raise NanosegError("unknown --backbone {!r}: choose one of {}".format(
            backbone, ", ".join(names)))


def check_size(size):
    """Unet encoders halve the input five times: the size must be a multiple of 32."""
    height, width = (int(v) for v in size)
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise NanosegError("--size {} {} must be positive multiples of {} (the Unet encoder "
                           "downsamples 5 times): try {} {}".format(
                               height, width, SIZE_MULTIPLE, _round32(height),
                               _round32(width)))


def _round32(value):
    return max(SIZE_MULTIPLE, int(round(value / float(SIZE_MULTIPLE))) * SIZE_MULTIPLE)


# -- precision ----------------------------------------------------------------------------
@contextlib.contextmanager
def precision_policy(name):
    """Set the global Keras dtype policy for a block, and always restore the previous one.

    The policy is process-global: a mixed-precision run must not leak float16 layers into
    the next model built in the same process (tests, the float32 export copy).
    """
    import tensorflow as tf
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


# -- building -----------------------------------------------------------------------------
def build_model(backbone, contract, encoder_weights="imagenet", encoder_freeze=False,
                mixed_precision=False, bn_momentum=None):
    """A Unet for ``contract`` (input size, activation, output channels).

    ``encoder_weights`` is ``"imagenet"``, ``None``/``"none"`` or a path to a no-top
    backbone weights file. With ``mixed_precision`` the network runs in float16 but its
    last activation is a float32 layer (numerically safe softmax/sigmoid, float32 output).
    ``bn_momentum`` (default: Keras' 0.99) sets every BatchNormalization's momentum.
    """
    check_backbone(backbone)
    check_size(contract.size)
    weights = resolve_encoder_weights(encoder_weights)
    policy = "mixed_float16" if mixed_precision else "float32"
    with precision_policy(policy):
        model = _unet(backbone, contract, weights, encoder_freeze,
                      split_activation=bool(mixed_precision))
    if bn_momentum is not None:
        set_batchnorm_momentum(model, bn_momentum)
    return model


def set_batchnorm_momentum(model, momentum):
    """Set the running-statistics momentum of every BatchNormalization layer.

    Inference uses the running mean/variance, which need about 1 / (1 - momentum) steps to
    forget their initial values: ~100 steps at Keras' 0.99, ~10 at 0.9. A run of a few
    hundred steps from scratch (the demo, a quick experiment) otherwise trains well but
    predicts background everywhere at inference.
    """
    if not 0.0 < momentum < 1.0:
        raise NanosegError("--bn-momentum must be in (0, 1), got {}".format(momentum))
    import tensorflow as tf
    count = 0
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
            count += 1
    return count


def resolve_encoder_weights(encoder_weights):
    """'imagenet' | None/'none' | existing file path, else a one-line error."""
    if encoder_weights is None or str(encoder_weights).lower() == "none":
        return None
    if encoder_weights == "imagenet":
        return "imagenet"
    path = os.path.abspath(os.path.expanduser(str(encoder_weights)))
    if not os.path.isfile(path):
        raise NanosegError("--encoder-weights {} is not a file: pass 'imagenet', 'none' or "
                           "the path of the backbone's no-top .h5 weights".format(path))
    return path


def _unet(backbone, contract, weights, encoder_freeze, split_activation):
    """sm.Unet, with the offline ImageNet download turned into a one-line error."""
    sm = keras_env.import_segmentation_models()
    import tensorflow as tf
    activation = contract.activation
    try:
        model = sm.Unet(backbone, input_shape=(contract.height, contract.width, 3),
                        classes=contract.output_channels,
                        activation="linear" if split_activation else activation,
                        encoder_weights=weights, encoder_freeze=encoder_freeze)
    except Exception as exc:  # keras raises a bare Exception for a failed download
        if "URL fetch failure" in str(exc):
            raise NanosegError(offline_weights_message(backbone, str(exc)))
        if weights not in (None, "imagenet") and isinstance(exc, (ValueError, OSError)):
            raise NanosegError("--encoder-weights {} does not fit backbone {} ({}): pass "
                               "that backbone's no-top weights file, 'imagenet' or "
                               "'none'".format(weights, backbone, _first_line(exc)))
        raise
    if split_activation:
        outputs = tf.keras.layers.Activation(activation, dtype="float32",
                                             name=activation)(model.output)
        model = tf.keras.Model(model.input, outputs, name=model.name)
    return model


def offline_weights_message(backbone, error_text):
    """Explain an ImageNet download failure: where the file goes and what to pass instead."""
    match = re.search(r"https?://\S+?/([^/\s:]+\.h5)", error_text)
    filename = match.group(1) if match else "<the backbone's no-top .h5>"
    return ("ImageNet weights for backbone {} could not be downloaded (offline?): put {} in "
            "{}, or pass --encoder-weights /path/to/{} or --encoder-weights none".format(
                backbone, filename, WEIGHTS_CACHE_HINT, filename))


def _first_line(exc):
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def float32_copy_from_file(weights_path, backbone, contract, split_activation):
    """The architecture rebuilt under the float32 policy, weights loaded from a checkpoint.

    A mixed-precision model has float16 layers; export and the edge must never meet them,
    so the bundle's model.h5 is always this float32 twin. Its variables are float32 in both
    policies, so the copy is exact. ``weights_path`` is a Keras .h5 weights file or a TF
    checkpoint prefix (optimizer entries in it are ignored).
    """
    with precision_policy("float32"):
        twin = _unet(backbone, contract, None, False, split_activation)
    status = twin.load_weights(weights_path)
    if status is not None and hasattr(status, "expect_partial"):
        status.expect_partial()
    return twin


# -- loss and metrics ---------------------------------------------------------------------
def _masked(function, name):
    """``function(gt, pr)`` computed only where the target's last (validity) channel is 1.

    Both the target and the prediction are multiplied by the validity mask, so an ignored
    pixel is a perfect true negative for Dice, Focal, IoU and F-score alike.
    """
    import tensorflow as tf

    def masked(y_true, y_pred):
        y_pred = tf.cast(y_pred, tf.float32)
        valid = tf.cast(y_true[..., -1:], tf.float32)
        target = tf.cast(y_true[..., :-1], tf.float32)
        return function(target * valid, y_pred * valid)

    masked.__name__ = name
    return masked


def training_objects():
    """Name -> function for every loss and metric a saved model may have been compiled with.

    These are what ``tf.keras.models.load_model(compile=True)`` needs; the loss for both
    activations is included so a reader does not need the contract.
    """
    sm = keras_env.import_segmentation_models()
    objects = {
        LOSS_NAMES["sigmoid"]: _masked(sm.losses.DiceLoss() + sm.losses.BinaryFocalLoss(),
                                       LOSS_NAMES["sigmoid"]),
        LOSS_NAMES["softmax"]: _masked(
            sm.losses.DiceLoss() + sm.losses.CategoricalFocalLoss(),
            LOSS_NAMES["softmax"]),
        IOU_NAME: _masked(sm.metrics.IOUScore(threshold=METRIC_THRESHOLD), IOU_NAME),
        FSCORE_NAME: _masked(sm.metrics.FScore(threshold=METRIC_THRESHOLD), FSCORE_NAME),
    }
    return objects


def compile_model(model, contract, learning_rate=1e-3):
    """Adam + masked Dice/Focal loss + masked IoU and F-score at 0.5.

    Under a mixed_float16 model Keras wraps Adam in a LossScaleOptimizer by itself.
    """
    import tensorflow as tf
    objects = training_objects()
    model.compile(optimizer=tf.keras.optimizers.Adam(learning_rate=learning_rate),
                  loss=objects[LOSS_NAMES[contract.activation]],
                  metrics=[objects[IOU_NAME], objects[FSCORE_NAME]])
    return model


# -- reloading ----------------------------------------------------------------------------
def inference_objects():
    """swish and FixedDropout, re-created as efficientnet 1.0.0 defines them.

    Redefined here (a few lines) so that reloading an EfficientNet Unet needs neither
    segmentation_models nor efficientnet installed.
    """
    import tensorflow as tf

    def swish(x):
        """x * sigmoid(x), the native TF op (efficientnet uses it when available)."""
        return tf.nn.swish(x)

    class FixedDropout(tf.keras.layers.Dropout):
        """Dropout whose noise_shape may hold None (filled from the input's shape)."""

        def _get_noise_shape(self, inputs):
            if self.noise_shape is None:
                return self.noise_shape
            symbolic_shape = tf.shape(inputs)
            return tuple(symbolic_shape[axis] if shape is None else shape
                         for axis, shape in enumerate(self.noise_shape))

    return {"swish": swish, "FixedDropout": FixedDropout}


def load_model_for_inference(path, compile=False):
    """Load ``model.h5``; ``compile=True`` also restores the loss and metrics.

    Without compiling, segmentation_models is not imported at all.
    """
    keras_env.prepare()
    import tensorflow as tf
    if not os.path.isfile(path):
        raise NanosegError("model file not found: {} (train/train.py writes model.h5 into "
                           "the bundle)".format(path))
    objects = inference_objects()
    if compile:
        objects.update(training_objects())
    try:
        return tf.keras.models.load_model(path, custom_objects=objects, compile=compile)
    except (OSError, ValueError) as exc:
        raise NanosegError("cannot load Keras model {}: {} (is it a model.h5 written by "
                           "train/train.py?)".format(path, _first_line(exc)))


def predict_probabilities(model, x_batch):
    """float32 NHWC batch -> float32 probabilities (N, H, W, C), one graph call per batch.

    A direct call (not ``model.predict``) is deterministic, adds no progress bar and works
    for a model created under any distribution strategy.
    """
    import numpy as np
    out = model(np.asarray(x_batch, dtype=np.float32), training=False)
    return np.asarray(out, dtype=np.float32)


def save_model_files(model, folder):
    """A bundle's three model files: model.h5 (architecture + weights, no optimizer),
    weights.h5 and model.json (the tutorial's weights-only and json routes)."""
    from nanoseg import bundle as names
    from nanoseg.files import write_text_atomic
    with warnings.catch_warnings():   # h5 is deliberate: tf2onnx and TF 2.x all read it
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(os.path.join(folder, names.MODEL_H5), include_optimizer=False,
                   save_format="h5")
    model.save_weights(os.path.join(folder, names.WEIGHTS_H5))
    write_text_atomic(os.path.join(folder, names.MODEL_JSON), model.to_json())
