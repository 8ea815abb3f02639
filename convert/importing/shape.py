"""What an imported model knows about itself, and the model nanoseg exports from it.

A segmentation_models model says its input size (or ``(None, None, 3)``), its output
channels and its last activation (also the nail tutorial's separate float32 ``Activation``
head of a mixed-precision model). What it cannot say (class names, the size of a size-free
model, logits' activation) comes from flags, and a flag that contradicts the model is a
one-line error. :func:`exported_model` rebuilds the model as nanoseg needs it: a fixed
input size, float32 layers only, probabilities out, background in channel 0.
"""
import logging

import numpy as np

from nanoseg.contract import ACTIVATIONS
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
BACKGROUND = "background"
ORDER_LAYER = "nanoseg_label_order"


class ModelFacts(object):
    """Input size ((H, W) or None), output channels, last activation (None: raw scores)."""

    def __init__(self, size, channels, activation, head, layer_names):
        self.size = size
        self.channels = channels
        self.activation = activation
        self.head = head
        self.layer_names = layer_names


def read_facts(model):
    """The :class:`ModelFacts` of a Keras functional model."""
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[-1] != 3:
        raise NanosegError("the model's input is {}: nanoseg feeds (H, W, 3) colour "
                           "images".format(shape[1:]))
    size = None if shape[1] is None or shape[2] is None else (int(shape[1]), int(shape[2]))
    out = tuple(model.output_shape)
    if len(out) != 4:
        raise NanosegError("the model's output is {}: nanoseg reads (H, W, C) per-pixel "
                           "scores".format(out[1:]))
    last = model.layers[-1]
    return ModelFacts(size, int(out[-1]), _activation_of(last), last.name,
                      [layer.name for layer in model.layers])


def _activation_of(layer):
    """'sigmoid' / 'softmax' when the layer ends in one, else None (raw scores)."""
    if type(layer).__name__ == "Softmax":
        return "softmax"
    activation = layer.get_config().get("activation")
    return activation if activation in ACTIVATIONS else None


def check_size(facts, size):
    """The (H, W) to run at: the model's own, or ``--size`` for a size-free model."""
    if facts.size is None:
        if size is None:
            raise NanosegError("the model takes any input size (None, None, 3): pass --size H W, "
                               "the size it should run at on the camera")
        return tuple(int(v) for v in size)
    if size is not None and tuple(int(v) for v in size) != facts.size:
        raise NanosegError("--size {} {} differs from the model's input {} {}: drop --size or "
                           "pass the model's".format(size[0], size[1], *facts.size))
    return facts.size


def check_activation(facts, activation):
    """(activation, whether nanoseg appends it): the model's own unless it outputs scores."""
    if facts.activation is None:
        if activation is None:
            raise NanosegError("the model's last layer {} outputs raw scores (no sigmoid or "
                               "softmax): pass --activation sigmoid|softmax, the one it was "
                               "trained with, and nanoseg appends it".format(facts.head))
        return activation, True
    if activation is not None and activation != facts.activation:
        raise NanosegError("--activation {} differs from the model's last layer {} ({}): drop "
                           "--activation".format(activation, facts.head, facts.activation))
    return facts.activation, False


def label_order(class_names, activation, channels):
    """(foreground names in label order 1..N, channel of each label id or None if already).

    ``class_names`` name the output channels in order. Sigmoid: one channel, the class.
    Softmax: one name per channel, one of them ``background`` (nanoseg's label 0).
    """
    names = [str(n) for n in class_names]
    if activation == "sigmoid":
        if channels != 1:
            raise NanosegError("the model has {} sigmoid output channels: nanoseg reads a "
                               "sigmoid model as one class (P(class)); a multi-class model "
                               "needs softmax".format(channels))
        if len(names) != 1 or names[0].lower() == BACKGROUND:
            raise NanosegError("--classes {} does not fit a sigmoid model: name the one class "
                               "its channel is the probability of".format(" ".join(names)))
        return names, None
    if channels < 2:
        raise NanosegError("the model has one softmax output channel (always 1.0): it must "
                           "have been trained with sigmoid; pass --activation sigmoid")
    if len(names) != channels:
        raise NanosegError("--classes names {} classes but the model has {} output channels: "
                           "name every channel, in order, background included".format(
                               len(names), channels))
    lower = [n.lower() for n in names]
    if lower.count(BACKGROUND) != 1:
        raise NanosegError("--classes {} must name exactly one channel 'background' (nanoseg's "
                           "label 0) for a softmax model".format(" ".join(names)))
    first = lower.index(BACKGROUND)
    order = [first] + [i for i in range(channels) if i != first]
    foreground = [names[i] for i in order[1:]]
    return foreground, (None if first == 0 else order)


def exported_model(model, size, add_activation, activation, order):
    """The float32, fixed-size model with probabilities in label order (background first).

    Rebuilt from the model's config: a mixed-precision model's float16 layers become float32
    (the variables are float32 in both, so the weights carry over exactly) and a size-free
    input gets ``size``. ``order`` (channel per label id) becomes a frozen 1x1 convolution
    holding a permutation matrix: each output is one input times 1.0, exact in FP32 and FP16.
    """
    import tensorflow as tf
    from train.model import inference_objects
    config = model.get_config()
    _float32_everywhere(config)
    for layer in config.get("layers", []):
        if layer.get("class_name") == "InputLayer":
            layer["config"]["batch_input_shape"] = [None, int(size[0]), int(size[1]), 3]
    try:
        rebuilt = tf.keras.Model.from_config(config, custom_objects=inference_objects())
    except (ValueError, TypeError, KeyError) as exc:
        raise NanosegError("the model cannot be rebuilt at {}x{} ({}): pass a --size it "
                           "accepts".format(size[0], size[1], str(exc).strip().splitlines()[0]))
    rebuilt.set_weights(model.get_weights())
    outputs = rebuilt.output
    if add_activation:
        outputs = tf.keras.layers.Activation(activation, dtype="float32",
                                             name="nanoseg_" + activation)(outputs)
    if order is not None:
        kernel = np.zeros((1, 1, len(order), len(order)), np.float32)
        for label, channel in enumerate(order):
            kernel[0, 0, channel, label] = 1.0
        permute = tf.keras.layers.Conv2D(len(order), 1, use_bias=False, trainable=False,
                                         dtype="float32", name=ORDER_LAYER)
        outputs = permute(outputs)
        permute.set_weights([kernel])
    if outputs is rebuilt.output:
        return rebuilt
    return tf.keras.Model(rebuilt.input, outputs, name=rebuilt.name)


def _float32_everywhere(node):
    """Replace every mixed-precision dtype policy in a Keras config by float32, in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "dtype" and _is_mixed(value):
                node[key] = "float32"
            else:
                _float32_everywhere(value)
    elif isinstance(node, list):
        for value in node:
            _float32_everywhere(value)


def _is_mixed(value):
    if isinstance(value, str):
        return value.startswith("mixed_")
    if isinstance(value, dict) and value.get("class_name") in ("Policy", "DTypePolicy"):
        return str(value.get("config", {}).get("name", "")).startswith("mixed_")
    return False


def check_runs(model, size):
    """One call on a zero image: a size the model cannot take is one line, not a trace."""
    try:
        out = np.asarray(model(np.zeros((1, size[0], size[1], 3), np.float32),
                               training=False))
    except Exception as exc:  # TensorFlow raises many types for a shape that does not fit
        raise NanosegError("the model does not run at {}x{} ({}): pass a --size it accepts "
                           "(Unet/FPN/Linknet: multiples of 32; PSPNet: of 48)".format(
                               size[0], size[1], str(exc).strip().splitlines()[0][:160]))
    if out.shape[1:3] != tuple(size):
        raise NanosegError("the model outputs {}x{} for a {}x{} input: nanoseg needs the "
                           "output at the input's size".format(out.shape[1], out.shape[2],
                                                               size[0], size[1]))
    return out
