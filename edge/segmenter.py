"""The Python API: one model bundle; frames in, labels, probabilities, class shares, overlay out.

    import nanoseg
    with nanoseg.load("bundles/nails") as seg:
        labels = seg.labels(frame_bgr)           # uint8 H x W at the frame's size
        print(seg.class_shares(labels))          # {"background": 0.93, "nail": 0.07}

It is also the runtime's one inference path: edge/runtime.py's Processor (run_camera,
benchmark) calls the same three steps, :meth:`Segmenter.preprocess` -> :meth:`~Segmenter.infer`
-> :meth:`~Segmenter.to_labels`, so a script and the CLI cannot disagree on a pixel.
Preprocessing writes into the backend's input buffer (no per-frame allocation), so a
Segmenter serves one call at a time; use one per thread. Python 3.6, numpy + OpenCV.
"""
import logging

import cv2
import numpy as np

from edge.backends import load_backend
from edge.overlay import Renderer
from nanoseg.errors import NanosegError
from nanoseg.preprocess import (CHANNEL_ORDERS, check_image, labels_to_frame,
                                preprocess_image, probabilities_to_labels)

LOG = logging.getLogger(__name__)


def all_finite(probs):
    """False if ``probs`` holds a NaN or an Inf. Min and max only: two passes over the small
    model-size output, no allocation (a NaN propagates through both, an Inf ends up in one)."""
    with np.errstate(invalid="ignore"):
        return bool(np.isfinite(np.min(probs)) and np.isfinite(np.max(probs)))


def load(bundle, backend="auto", device="cpu", engine=None, alpha=0.5):
    """A :class:`Segmenter` for the bundle folder.

    ``backend``: ``auto`` (the bundle's TensorRT engine when tensorrt imports and one matches,
    else ONNX Runtime), ``tensorrt``, ``onnxruntime`` or ``keras`` (desktop); ``device`` is
    ONNX Runtime's (``cpu`` or ``cuda``); ``engine`` a TensorRT engine file to use instead of
    the bundle's; ``alpha`` the overlay's opacity. The same choices as edge/run_camera.py.
    """
    return Segmenter(load_backend(bundle, backend, device, engine), alpha=alpha)


def channel_order(order):
    """``order`` upper-cased, or a one-line error unless it is RGB or BGR."""
    name = str(order).upper()
    if name not in CHANNEL_ORDERS:
        raise NanosegError("order must be 'BGR' (OpenCV frames) or 'RGB', got {!r}".format(order))
    return name


def check_labels(labels):
    """Raise a clear error unless ``labels`` is a uint8 H x W label map."""
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8 or labels.ndim != 2:
        desc = "{} {}".format(getattr(labels, "dtype", type(labels).__name__),
                              getattr(labels, "shape", ""))
        raise NanosegError("labels must be a uint8 HxW label map (what Segmenter.labels "
                           "returns), got {}".format(desc))


def class_shares(labels, contract, ignored=()):
    """{class name: fraction of the scored pixels} of a label map (:meth:`Segmenter.class_shares`).

    Pixels with the contract's ignore id and the label ids in ``ignored`` (run_camera's
    ``--ignore-class``) are not scored, and those classes are left out of the result.
    """
    check_labels(labels)
    counts = np.bincount(labels.ravel(), minlength=256)
    if contract.ignore_id is not None:
        counts[contract.ignore_id] = 0
    unknown = np.flatnonzero(counts[contract.num_labels:]) + contract.num_labels
    if unknown.size:
        raise NanosegError("labels hold ids {} that are not classes of this model (0..{}): "
                           "they come from another model".format(
                               [int(i) for i in unknown], contract.num_labels - 1))
    for label in ignored:
        counts[label] = 0
    scored = int(counts.sum())
    return dict((name, float(counts[label]) / scored if scored else 0.0)
                for label, name in enumerate(contract.class_names) if label not in ignored)


class Segmenter(object):
    """A loaded model bundle: its contract, its backend and the overlay's renderer.

    Frames are uint8 H x W x 3, BGR (OpenCV's order) unless ``order="RGB"``. Made by
    :func:`load` (or ``nanoseg.load``); ``close()`` or a ``with`` block frees the backend
    (a TensorRT engine's GPU memory). ``owns_backend=False`` leaves closing it to the caller
    (the runtime, which loaded it).
    """

    def __init__(self, backend, alpha=0.5, owns_backend=True):
        self.backend = backend
        self.contract = backend.contract
        self.alpha = alpha
        self._owns_backend = owns_backend
        buffer_of = getattr(backend, "input_buffer", None)
        self._input = buffer_of() if buffer_of is not None else None
        self._renderer = None
        self._closed = False
        self.labelled = 0            # outputs turned into labels
        self.non_finite_frames = 0   # of them, outputs with a NaN or an Inf

    @property
    def classes(self):
        """Class names by label id, background first."""
        return list(self.contract.class_names)

    # -- the inference path, step by step (the runtime times each) -----------------------
    def preprocess(self, frame, order="BGR"):
        """The model's input for ``frame`` (the contract's transform, the training one),
        written into the backend's input buffer: valid until the next call."""
        self._check_open()
        check_image(frame, "frame")
        return preprocess_image(frame, self.contract, channel_order(order), out=self._input)

    def infer(self, x):
        """float32 probabilities H x W x C at the model's size for a preprocessed input."""
        self._check_open()
        return self.backend.infer(x)

    def to_labels(self, probs):
        """uint8 label map at the model's size: the contract's threshold or argmax.

        Outputs with a NaN or an Inf still give labels (meaningless ones) but are counted in
        ``non_finite_frames``; the first logs a WARNING.
        """
        self.labelled += 1
        if not all_finite(probs):
            self.non_finite_frames += 1
            if self.non_finite_frames == 1:
                LOG.warning("the model output of frame %d has NaN/Inf values, so its labels "
                            "are meaningless (a broken engine or an FP16 overflow?): check the "
                            "model against its golden outputs with convert/validate.py; later "
                            "ones are counted in the summary", self.labelled)
        return probabilities_to_labels(probs, self.contract)

    # -- whole frames ---------------------------------------------------------------------
    def probabilities(self, frame, order="BGR"):
        """float32 H x W x C at the model's size, as the model outputs them (sigmoid: one
        channel, P(class 1); softmax: one channel per label id, background first)."""
        return self.infer(self.preprocess(frame, order))

    def small_labels(self, frame, order="BGR"):
        """uint8 label map at the model's size (cheaper than :meth:`labels`; ``overlay``
        takes it as it is)."""
        return self.to_labels(self.probabilities(frame, order))

    def labels(self, frame, order="BGR"):
        """uint8 label map at the frame's size (nearest neighbour): the contract's label ids,
        what edge/run_camera.py --save-masks writes."""
        return labels_to_frame(self.small_labels(frame, order), frame.shape)

    def class_shares(self, labels):
        """{class name: fraction of the scored pixels}, every class, background included.

        Pixels with the contract's ignore id (255) are not scored; any other id that is not
        a class is an error (the labels are from another model).
        """
        return class_shares(labels, self.contract)

    def overlay(self, frame, labels, order="BGR", fps=None):
        """The frame with classes tinted and the legend, as run_camera draws it (in the
        frame's channel order); ``fps`` also draws run_camera's statistics line. ``labels``
        may be at the frame's or the model's size."""
        check_image(frame, "frame")
        check_labels(labels)
        order = channel_order(order)
        if self._renderer is None:
            self._renderer = Renderer(self.contract, self.alpha)
        bgr = frame if order == "BGR" else cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if fps is None:
            out = self._renderer.overlay(bgr, labels)
        else:
            out = self._renderer.render(bgr, labels, fps)
        return out if order == "BGR" else cv2.cvtColor(out, cv2.COLOR_BGR2RGB)

    # -- lifetime -------------------------------------------------------------------------
    def close(self):
        """Free the backend (once); later inference calls raise NanosegError."""
        if self._closed:
            return
        self._closed = True
        self._input = None
        if self._owns_backend:
            self.backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _check_open(self):
        if self._closed:
            raise NanosegError("this Segmenter is closed: load the bundle again with "
                               "nanoseg.load(...)")

    def __repr__(self):
        return "Segmenter({}, classes={}{})".format(
            self.backend.describe(), self.classes, ", closed" if self._closed else "")
