"""A Keras model from the files segmentation_models users have, with one-line errors.

Three forms, as the tutorials save them: a full ``model.save("x.h5")`` (FixedDropout and
swish inside for EfficientNets, sm losses and metrics compiled in: the model is loaded
without compiling, so those are never needed), ``model.save_weights`` plus the code that
built it (here: the architecture flags), and ``model.to_json()`` plus the weights.
"""
import logging
import os

from nanoseg.errors import NanosegError
from train import keras_env

LOG = logging.getLogger(__name__)

# --arch name -> the segmentation_models class that builds it.
ARCHITECTURES = {"unet": "Unet", "fpn": "FPN", "linknet": "Linknet", "pspnet": "PSPNet"}


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _require_file(path, flag):
    if not os.path.isfile(path):
        raise NanosegError("{} {} is not a file".format(flag, path))
    return path


def _custom_objects():
    from train.model import inference_objects
    return inference_objects()


def _unknown_object_message(path, exc):
    """A layer or function Keras cannot rebuild, named with the fix."""
    return ("{} uses {}: nanoseg knows segmentation_models' layers (FixedDropout, swish); a "
            "custom layer of your own cannot be exported, rebuild the model without it and "
            "pass --weights".format(path, _first_line(exc)))


def load_full_h5(path):
    """``model.save("model.h5")`` of any sm model (compile=False: losses are not needed)."""
    keras_env.prepare()
    import tensorflow as tf
    _require_file(path, "--h5")
    try:
        import h5py
        with h5py.File(path, "r") as handle:
            has_model = "model_config" in handle.attrs
    except OSError as exc:
        raise NanosegError("--h5 {} is not an HDF5 file ({}): pass a .h5 saved by "
                           "model.save()".format(path, _first_line(exc)))
    if not has_model:
        raise NanosegError("--h5 {} holds weights only (model.save_weights): pass it as "
                           "--weights with --arch, --backbone and --activation, or with "
                           "--json".format(path))
    try:
        return tf.keras.models.load_model(path, custom_objects=_custom_objects(),
                                          compile=False)
    except (ValueError, TypeError) as exc:
        if "Unknown" in str(exc):
            raise NanosegError(_unknown_object_message(path, exc))
        raise NanosegError("cannot load --h5 {}: {}".format(path, _first_line(exc)))


def load_json(json_path, weights_path):
    """``model.to_json()`` + ``model.save_weights()``."""
    keras_env.prepare()
    import tensorflow as tf
    _require_file(json_path, "--json")
    _require_file(weights_path, "--weights")
    with open(json_path) as handle:
        text = handle.read()
    try:
        model = tf.keras.models.model_from_json(text, custom_objects=_custom_objects())
    except (ValueError, TypeError, KeyError) as exc:
        if "Unknown" in str(exc):
            raise NanosegError(_unknown_object_message(json_path, exc))
        raise NanosegError("--json {} is not a Keras model.to_json() ({})".format(
            json_path, _first_line(exc)))
    _load_weights(model, weights_path, "the --json architecture")
    return model


def build_from_flags(arch, backbone, activation, channels, size, weights_path):
    """``sm.<Arch>(backbone, ...)`` as the training code built it, then its weights."""
    from train.model import check_backbone
    check_backbone(backbone)
    if arch not in ARCHITECTURES:
        raise NanosegError("unknown --arch {!r}: choose one of {}".format(
            arch, ", ".join(sorted(ARCHITECTURES))))
    _require_file(weights_path, "--weights")
    sm = keras_env.import_segmentation_models()
    builder = getattr(sm, ARCHITECTURES[arch])
    height, width = size
    try:
        model = builder(backbone, input_shape=(height, width, 3), classes=channels,
                        activation=activation, encoder_weights=None)
    except ValueError as exc:
        raise NanosegError("segmentation_models cannot build {} {} at --size {} {}: {}".format(
            arch, backbone, height, width, _first_line(exc)))
    _load_weights(model, weights_path, "--arch {} --backbone {} with {} output channel(s) "
                  "({})".format(arch, backbone, channels, activation))
    return model


def _load_weights(model, weights_path, what):
    try:
        model.load_weights(weights_path)
    except (ValueError, OSError) as exc:
        raise NanosegError("--weights {} do not fit {}: {} (check --arch, --backbone and the "
                           "number of --classes)".format(weights_path, what, _first_line(exc)))
