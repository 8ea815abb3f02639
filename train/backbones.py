"""Backbone names and the input normalization each one expects, without importing TensorFlow.

segmentation_models' ``get_preprocessing(backbone)`` hides four schemes behind one call
(measured on segmentation-models 1.0.1 / keras-applications 1.0.8 / image-classifiers 1.0.0).
The edge cannot import segmentation_models, so each scheme is written down here as the
contract's numbers (``y = (x * scale - mean) / std``) plus the channel order the encoder
expects; tests/test_backbones.py checks every backbone against the real function.
"""
from nanoseg.normalization import BACKBONE, IMAGENET_MEAN, IMAGENET_STD, Normalization
from nanoseg.errors import NanosegError

# The 32 backbones segmentation_models 1.0.1 builds, grouped by their preprocessing mode.
_MODES = (
    # identity: the encoder normalizes inside (a BatchNorm on the input), pixels go in raw
    ("identity", ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
                  "seresnet18", "seresnet34", "resnext50", "resnext101")),
    # torch: x/255, then ImageNet mean/std
    ("torch", ("seresnet50", "seresnet101", "seresnet152", "seresnext50", "seresnext101",
               "senet154", "densenet121", "densenet169", "densenet201",
               "efficientnetb0", "efficientnetb1", "efficientnetb2", "efficientnetb3",
               "efficientnetb4", "efficientnetb5", "efficientnetb6", "efficientnetb7")),
    # caffe: RGB -> BGR, minus the ImageNet mean in 0..255 (BGR order), no scaling
    ("caffe", ("vgg16", "vgg19")),
    # tf: x/127.5 - 1
    ("tf", ("inceptionresnetv2", "inceptionv3", "mobilenet", "mobilenetv2")),
)

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def backbone_names():
    """All backbone names segmentation_models 1.0.1 accepts (for CLI choices and checks)."""
    return tuple(name for _, names in _MODES for name in names)


def preprocessing_mode(backbone):
    """The keras-applications style mode ('identity', 'torch', 'caffe', 'tf') of a backbone."""
    for mode, names in _MODES:
        if backbone in names:
            return mode
    raise NanosegError("unknown backbone {!r}: choose one of {}".format(
        backbone, ", ".join(backbone_names())))


def normalization_for(backbone):
    """(Normalization, channel_order) equal to ``sm.get_preprocessing(backbone)`` on RGB input.

    The Normalization is named ``backbone:<mode>`` so a contract says where its numbers came
    from; the channel order is the model input's (BGR only for the caffe-style VGGs).
    """
    mode = preprocessing_mode(backbone)
    name = "backbone:" + mode
    if mode == "identity":
        return Normalization(name, 1.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), "RGB"
    if mode == "torch":
        return Normalization(name, 1.0 / 255.0, IMAGENET_MEAN, IMAGENET_STD), "RGB"
    if mode == "caffe":
        return Normalization(name, 1.0, CAFFE_MEAN_BGR, (1.0, 1.0, 1.0)), "BGR"
    return Normalization(name, 1.0 / 255.0, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), "RGB"


def resolve_normalization(name, backbone):
    """The (Normalization, channel_order) a training run asked for with ``--normalization``.

    ``scale`` and ``imagenet`` are fixed schemes fed RGB; ``backbone`` follows the encoder.
    """
    if name == BACKBONE:
        return normalization_for(backbone)
    return Normalization.named(name), "RGB"   # a one-line error for an unknown name


# Layer names that only one encoder family builds (segmentation_models 1.0.1 keeps the
# encoder's layer names inside the segmentation model), and that family's preprocessing
# mode: how an imported model's normalization is guessed when --backbone is not given.
# The resnet family ("bn_data", a BatchNorm on the raw input) normalizes inside.
FINGERPRINTS = (
    ("efficientnet", ("stem_conv", "block1a_dwconv"), "torch"),
    ("mobilenetv2", ("Conv1", "expanded_conv_depthwise"), "tf"),
    ("mobilenet", ("conv1", "conv_dw_1"), "tf"),
    ("resnet", ("bn_data",), "identity"),
    ("vgg", ("block1_conv1", "block1_conv2"), "caffe"),
    ("densenet", ("conv1/conv", "pool1"), "torch"),
)


def guess_family(layer_names):
    """(family, mode) of the encoder whose layer names ``layer_names`` holds, or None."""
    names = set(layer_names)
    for family, required, mode in FINGERPRINTS:
        if all(name in names for name in required):
            return family, mode
    return None


def backbone_of_mode(mode):
    """A backbone with preprocessing ``mode`` (its normalization stands for the mode's)."""
    for known_mode, names in _MODES:
        if known_mode == mode:
            return names[0]
    raise NanosegError("unknown preprocessing mode {!r}".format(mode))
