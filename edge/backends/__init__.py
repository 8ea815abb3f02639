"""Inference backends behind one interface, chosen from one table.

base.py: the interface (:class:`Backend`) and array helpers; onnxruntime_backend.py: ONNX
Runtime; edge/tensorrt/backend.py: TensorRT; train/keras_backend.py: Keras (desktop only,
imported by name); table.py: the rows that tie a name to its artifact, opener and
libraries, and :func:`load_backend`.

Heavy libraries (onnxruntime, tensorrt/pycuda, TensorFlow) are imported inside the backend
that needs them.
"""
from edge.backends.base import Backend, as_batch, as_bundle, output_to_hwc  # noqa: F401
from edge.backends.onnxruntime_backend import DEVICES, OnnxRuntimeBackend  # noqa: F401
from edge.backends.table import (AUTO, ROWS, Unavailable, backend_help,  # noqa: F401
                                 backends, find_row, format_help, formats,
                                 load_backend)

BACKENDS = backends()
