"""The transform a model's input goes through, defined once: resize, channel order, normalize.

Also the way back (probabilities -> labels -> frame size) and how image files are decoded.
Training, evaluation, export's golden outputs and the edge all call these functions with the
bundle's contract. numpy + OpenCV, Python 3.6.
"""
import cv2
import numpy as np

from nanoseg.errors import NanosegError

CHANNEL_ORDERS = ("RGB", "BGR")
INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "cubic": cv2.INTER_CUBIC,
}
# How every image FILE is decoded, by training's readers and the edge's folder source alike:
# BGR, EXIF rotation ignored. Masks (read IMREAD_UNCHANGED) never apply EXIF, and a camera
# frame has none, so images stay on the pixel grid the file stores, as their masks do.
IMAGE_READ_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION


def resize_image(image, size, interpolation="linear", copy=True):
    """Resize uint8 HxWxC to ``size`` = (height, width): cv2.resize, as albumentations does.

    Resizing uint8 (not float) keeps results bit-identical across OpenCV 4.1 (JetPack) and
    4.11+ (desktop); float32 linear resizes differ by up to 1e-5 between them. An image
    already at ``size`` is copied unless ``copy=False`` (then it is returned itself: for a
    caller that only reads it).
    """
    height, width = size
    if image.shape[0] == height and image.shape[1] == width:
        return image.copy() if copy else image
    return cv2.resize(image, (width, height), interpolation=INTERPOLATIONS[interpolation])


def resize_mask(mask, size):
    """Resize a label mask with nearest neighbour (labels must never be blended)."""
    return resize_image(mask, size, "nearest")


def reorder_channels(image, image_order, model_order):
    """Return ``image`` (in ``image_order``) in ``model_order``; the orders are explicit."""
    image_order, model_order = image_order.upper(), model_order.upper()
    for order in (image_order, model_order):
        if order not in CHANNEL_ORDERS:
            raise NanosegError("channel order must be RGB or BGR, got {!r}".format(order))
    if image_order == model_order:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)  # a channel swap, either direction


def check_image(image, what="image"):
    """Raise a clear error unless ``image`` is uint8 HxWx3."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
            or image.shape[2] != 3:
        desc = "{} {}".format(getattr(image, "dtype", type(image).__name__),
                              getattr(image, "shape", ""))
        raise NanosegError("{} must be uint8 HxWx3 (RGB or BGR), got {}".format(what, desc))


def preprocess_image(image, contract, image_order, out=None):
    """uint8 HxWx3 image in ``image_order`` -> float32 HxWx3 model input (NHWC, no batch).

    ``out`` (float32 HxWx3, contiguous) receives the result instead of a new array: the
    edge passes its backend's input buffer so no frame allocates one.

    Order of operations is part of the contract: resize in uint8, channel order, normalize.
    Training (train/pipeline.py) and the edge both call exactly this. Resizing works per
    channel, so reordering after it gives the same pixels, and costs a model-sized copy
    instead of a full 720p one (~25 ms on a camera frame).
    """
    check_image(image)
    image = resize_image(image, contract.size, contract.interpolation, copy=False)  # read only
    image = reorder_channels(image, image_order, contract.channel_order)
    return contract.normalization.apply(image, out)


def to_layout(batch_nhwc, layout):
    """NHWC float32 batch -> the model's layout (contiguous)."""
    if layout == "NCHW":
        return np.ascontiguousarray(batch_nhwc.transpose(0, 3, 1, 2))
    return np.ascontiguousarray(batch_nhwc)


def probabilities_to_labels(probs, contract):
    """Model output (H,W,C) or (1,H,W,C) float -> uint8 label map (H,W).

    Sigmoid: label 1 where P > threshold. Softmax: argmax (channel index == label id).
    """
    probs = np.asarray(probs)
    if probs.ndim == 4:
        probs = probs[0]
    if probs.ndim != 3 or probs.shape[2] != contract.output_channels:
        raise NanosegError("model output has shape {}, the contract expects HxWx{}".format(
            probs.shape, contract.output_channels))
    if contract.activation == "sigmoid":
        return (probs[:, :, 0] > contract.threshold).astype(np.uint8)
    return np.argmax(probs, axis=2).astype(np.uint8)


def labels_to_frame(labels, frame_shape):
    """Resize a label map back to a frame's (height, width) with nearest neighbour."""
    return resize_mask(labels, (frame_shape[0], frame_shape[1]))
