"""The backend interface every backend implements, and the array helpers they share.

A backend loads from a bundle folder, checks that its artifact's contract matches the
bundle's (an engine or ONNX made from another model is refused in one line), and offers
``infer(x)``: ``x`` is the contract-preprocessed float32 HxWx3 (or 1xHxWx3, NHWC) and the
result is float32 probabilities HxWxC (NHWC), whatever layout the model itself uses.
"""
import numpy as np

from nanoseg.bundle import Bundle
from nanoseg.errors import NanosegError
from nanoseg.preprocess import to_layout


def as_batch(x, contract):
    """HxWx3 or 1xHxWx3 float32 -> contiguous 1xHxWx3, checked against the contract size."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    expected = contract.input_shape(1) if contract.layout == "NHWC" else \
        (1, contract.height, contract.width, 3)
    if x.shape != tuple(expected):
        raise NanosegError("backend input has shape {}, the contract wants {} (preprocess "
                           "frames with nanoseg.preprocess.preprocess_image)".format(
                               x.shape, tuple(expected)))
    return np.ascontiguousarray(x)


def output_to_hwc(output, contract):
    """A model output (NHWC or NCHW, with or without batch) -> float32 HxWxC.

    The layout is recognised from where the contract's channel count sits; an output that
    matches neither is a one-line error naming both shapes.
    """
    out = np.asarray(output, dtype=np.float32)
    channels = contract.output_channels
    if out.ndim == 4 and out.shape[0] == 1:
        out = out[0]
    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim == 3 and out.shape[2] == channels and out.shape[0] != channels:
        return out
    if out.ndim == 3 and out.shape[0] == channels and out.shape[2] != channels:
        return np.ascontiguousarray(out.transpose(1, 2, 0))
    if out.ndim == 3 and out.shape[2] == channels:
        return out
    raise NanosegError("model output has shape {}, expected HxWx{} or {}xHxW for this "
                       "contract: the model and contract.json do not belong together".format(
                           np.asarray(output).shape, channels, channels))


class Backend(object):
    """The interface: ``name``, ``contract`` (the bundle's), ``infer(x)``, ``close()``."""

    name = "backend"

    def __init__(self, contract, model_contract):
        self.contract = contract
        self.model_contract = model_contract
        self._input = None

    def input_buffer(self):
        """HxWx3 float32 array preprocessing may write into (no per-frame allocation).

        ``infer`` of this very array passes it on without a copy. None when the model's
        layout needs a transpose anyway (NCHW): then preprocess into a new array.
        """
        if self.model_contract.layout != "NHWC":
            return None
        if self._input is None:
            self._input = np.zeros(self.contract.input_shape(1), np.float32)
        return self._input[0]

    def infer(self, x):
        """Probabilities HxWxC (float32, NHWC) for one preprocessed image."""
        batch = to_layout(as_batch(x, self.contract), self.model_contract.layout)
        return output_to_hwc(self._run(batch), self.contract)

    def _run(self, batch):
        raise NotImplementedError

    def close(self):
        pass

    def describe(self):
        return self.name


def as_bundle(bundle):
    """A Bundle for a Bundle or a folder path."""
    return bundle if isinstance(bundle, Bundle) else Bundle(bundle)
