"""Run a serialized TensorRT engine with pycuda: one input, page-locked buffers, one stream.

:func:`plan_buffers` decides every buffer's shape/dtype/size from the engine's I/O tensors
(GPU-free, tested on any machine). :class:`TrtRunner` owns a CUDA context of its own and
pushes/pops it around every call, so it may be created in one thread and used from a worker
thread (one at a time: a lock serialises calls) while another thread captures frames.
TensorRT 8.x/10.x differences live in edge/trt_compat.py.

Python 3.6; tensorrt and pycuda are imported when a runner is created.
"""
import collections
import logging
import os
import threading

import numpy as np

from edge import trt_compat
from edge.errors import NanosegError

LOG = logging.getLogger(__name__)


class BufferPlan(collections.namedtuple("BufferPlan", "name shape dtype nbytes is_input")):
    """One host/device buffer pair: what :class:`TrtRunner` allocates for a tensor."""


def plan_buffers(io_tensors):
    """[TensorInfo] -> [BufferPlan]; rejects dynamic shapes and anything but one input."""
    plans = []
    for info in io_tensors:
        if any(int(d) < 0 for d in info.shape):
            raise NanosegError("engine tensor '{}' has a dynamic shape {}: rebuild the engine "
                               "from a static ONNX (convert/export_onnx.py)".format(
                                   info.name, info.shape))
        count = int(np.prod(info.shape)) if info.shape else 1
        plans.append(BufferPlan(info.name, tuple(info.shape), info.dtype,
                                count * np.dtype(info.dtype).itemsize, info.is_input))
    inputs = [p for p in plans if p.is_input]
    if len(inputs) != 1 or len(plans) < 2:
        raise NanosegError("the engine has {} input(s) and {} output(s); nanoseg runs "
                           "segmentation engines with one input and at least one "
                           "output".format(len(inputs), len(plans) - len(inputs)))
    return plans


def check_input(x, plan):
    """Raise a one-line error unless ``x`` has the engine input's shape (any float dtype)."""
    if tuple(x.shape) != plan.shape:
        raise NanosegError("input has shape {}, the engine '{}' expects {} (layout and size "
                           "come from the bundle's model.contract.json)".format(
                               tuple(x.shape), plan.name, plan.shape))


class TrtRunner(object):
    """Load an engine file and run it; ``infer(x) -> list of output arrays`` (engine shapes).

    Create it, call :meth:`infer` from any single thread at a time, :meth:`close` at the end
    (or use it as a context manager).
    """

    def __init__(self, engine_path, device_index=0):
        if not os.path.isfile(engine_path):
            raise NanosegError("TensorRT engine not found: {} (build it on the Jetson with "
                               "convert/build_engine.py --bundle BUNDLE)".format(engine_path))
        self._trt = trt_compat.import_tensorrt("the TensorRT backend (TrtRunner)")
        self._cuda = trt_compat.import_pycuda()
        self._lock = threading.Lock()
        self._cuda.init()
        self._context_cuda = self._cuda.Device(device_index).make_context()  # pushed
        try:
            self._load(engine_path)
        except Exception:
            self._context_cuda.pop()
            self._context_cuda.detach()
            self._context_cuda = None
            raise
        self._context_cuda.pop()

    def _load(self, engine_path):
        """Deserialize the engine and allocate every buffer (CUDA context current)."""
        trt = self._trt
        self._logger = trt.Logger(trt.Logger.WARNING)
        with open(engine_path, "rb") as handle:
            data = handle.read()
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise NanosegError("TensorRT could not load {}: it was built by another TensorRT "
                               "version or GPU; rebuild with convert/build_engine.py "
                               "--force".format(engine_path))
        self.context = self.engine.create_execution_context()
        self.plans = plan_buffers(trt_compat.io_tensors(self.engine))
        self._stream = self._cuda.Stream()
        self._host = [self._cuda.pagelocked_empty(p.shape, np.dtype(p.dtype))
                      for p in self.plans]
        self._device = [self._cuda.mem_alloc(p.nbytes) for p in self.plans]
        self.input_plan = [p for p in self.plans if p.is_input][0]
        LOG.info("engine %s: %s", os.path.basename(engine_path),
                 ", ".join("{} {} {}{}".format("in" if p.is_input else "out", p.name,
                                               p.shape, "" if p.dtype == "float32"
                                               else " " + p.dtype) for p in self.plans))

    @property
    def input_shape(self):
        return self.input_plan.shape

    @property
    def output_plans(self):
        return [p for p in self.plans if not p.is_input]

    def infer(self, x):
        """Run one batch: ``x`` in the engine input's shape -> copies of every output."""
        x = np.asarray(x)
        check_input(x, self.input_plan)
        with self._lock:
            self._context_cuda.push()
            try:
                return self._run(x)
            finally:
                self._context_cuda.pop()

    def _run(self, x):
        cuda, stream = self._cuda, self._stream
        outputs = []
        for plan, host, device in zip(self.plans, self._host, self._device):
            if plan.is_input:
                np.copyto(host, x, casting="same_kind")
                cuda.memcpy_htod_async(device, host, stream)
        trt_compat.execute(self.context, self.engine, [int(d) for d in self._device],
                           stream.handle)
        for plan, host, device in zip(self.plans, self._host, self._device):
            if not plan.is_input:
                cuda.memcpy_dtoh_async(host, device, stream)
                outputs.append(host)
        stream.synchronize()
        return [np.array(out) for out in outputs]

    def close(self):
        """Free device memory and the CUDA context (idempotent)."""
        if getattr(self, "_context_cuda", None) is None:
            return
        self._context_cuda.push()
        try:
            for device in self._device:
                device.free()
            self.context = self.engine = self._runtime = None
        finally:
            self._context_cuda.pop()
            self._context_cuda.detach()
            self._context_cuda = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
