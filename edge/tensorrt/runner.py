"""Run a serialized TensorRT engine with pycuda: one input, page-locked buffers, one stream.

:func:`plan_buffers` decides every buffer's shape/dtype/size from the engine's I/O tensors
(GPU-free, tested on any machine). :class:`TrtRunner` uses the GPU's *primary* CUDA context
(``Device.retain_primary_context()``), the one TensorRT's CUDA runtime calls use, so the
4 GB Nano carries one context, not two. pycuda does not make a retained primary context
current: the runner pushes it around every call (under a lock) and pops it after, so it
may be created on one thread and used from a worker thread, one call at a time, while
another thread captures frames. TensorRT 8.x/10.x differences live in edge/tensorrt/compat.py.

Python 3.6; tensorrt and pycuda are imported when a runner is created.
"""
import collections
import logging
import os
import threading

import numpy as np

from edge.tensorrt import compat as trt_compat
from nanoseg.errors import NanosegError

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


def open_context(cuda, device):
    """A CUDA context for ``device``, *not* current: the caller push()es / pop()s it.

    The device's primary context when pycuda offers ``retain_primary_context`` (built
    against CUDA >= 7.0; JetPack 4.6 has 10.2); otherwise a context of our own
    (``make_context`` makes it current, so it is popped here).
    """
    if hasattr(device, "retain_primary_context"):
        return device.retain_primary_context()
    context = device.make_context()
    context.pop()
    return context


def is_same_array(a, b):
    """True when ``b`` is exactly the array ``a`` (same memory, shape, type, element order):
    a view that only overlaps it (reversed, shifted, strided) holds other values and must be
    copied. Strides are compared only on axes longer than 1: ``host[0][None]`` (how a
    backend hands back the HxWx3 buffer it lent) has stride 0 on its batch axis."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0] and
            a.shape == b.shape and a.dtype == b.dtype and
            all(sa == sb for sa, sb, n in zip(a.strides, b.strides, a.shape) if n > 1))


class TrtRunner(object):
    """Load an engine file and run it; ``infer(x) -> list of output arrays`` (engine shapes).

    Create it, call :meth:`infer` from any thread (calls are serialised by a lock),
    :meth:`close` at the end (or use it as a context manager).
    """

    def __init__(self, engine_path, device_index=0):
        if not os.path.isfile(engine_path):
            raise NanosegError("TensorRT engine not found: {} (build it on the Jetson with "
                               "convert/build_engine.py --bundle BUNDLE)".format(engine_path))
        self._trt = trt_compat.import_tensorrt("the TensorRT backend (TrtRunner)")
        self._cuda = trt_compat.import_pycuda()
        self._lock = threading.Lock()
        self._host, self._device, self._stream = [], [], None
        self.io = self.context = self.engine = self._runtime = None
        device = trt_compat.cuda_device(self._cuda, device_index)
        self._context_cuda = open_context(self._cuda, device)
        self._context_cuda.push()
        try:
            self._load(engine_path)
        except Exception:
            try:
                self._release()
            finally:
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
        del data
        if self.engine is None:
            raise NanosegError("TensorRT could not load {}: it was built by another TensorRT "
                               "version or GPU; rebuild with convert/build_engine.py "
                               "--force".format(engine_path))
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise NanosegError("TensorRT could not create an execution context for {} (GPU "
                               "memory): close other GPU programs and retry".format(
                                   engine_path))
        self.io = trt_compat.EngineIO(self.engine, self.context)
        self.plans = plan_buffers(self.io.tensors)
        self._stream = self._cuda.Stream()
        for plan in self.plans:
            self._host.append(self._cuda.pagelocked_empty(plan.shape, np.dtype(plan.dtype)))
            self._device.append(self._cuda.mem_alloc(plan.nbytes))
        self.io.bind([int(d) for d in self._device])  # buffers never move: bound once
        self.input_plan = [p for p in self.plans if p.is_input][0]
        self._inputs = [(h, d) for p, h, d in zip(self.plans, self._host, self._device)
                        if p.is_input]
        self._outputs = [(h, d) for p, h, d in zip(self.plans, self._host, self._device)
                         if not p.is_input]
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

    def input_host_buffer(self):
        """The page-locked float32 input buffer (fill it, then ``infer`` it: no copy)."""
        host = self._inputs[0][0] if self._inputs else None
        return host if host is not None and host.dtype == np.float32 else None

    def infer(self, x):
        """Run one batch: ``x`` in the engine input's shape -> copies of every output."""
        x = np.asarray(x)
        check_input(x, self.input_plan)
        with self._lock:
            if self._context_cuda is None:
                raise NanosegError("this TensorRT runner was closed: create a new one")
            self._context_cuda.push()
            try:
                return self._run(x)
            finally:
                self._context_cuda.pop()

    def _run(self, x):
        cuda, stream = self._cuda, self._stream
        for host, device in self._inputs:
            if not is_same_array(host, x):  # filled in place by the caller: no copy
                np.copyto(host, x, casting="same_kind")  # numpy copies overlaps safely
            cuda.memcpy_htod_async(device, host, stream)
        self.io.execute(stream.handle)
        for host, device in self._outputs:
            cuda.memcpy_dtoh_async(host, device, stream)
        stream.synchronize()
        return [np.array(host) for host, _ in self._outputs]

    def _release(self):
        """Free buffers, stream and TensorRT objects; the CUDA context must be current."""
        try:
            if self._stream is not None:
                self._stream.synchronize()  # no copy may still target a buffer freed below
        finally:
            for device in self._device:
                device.free()
            for host in self._host:
                host.base.free()  # the PagelockedHostAllocation behind the numpy array
            self._inputs = self._outputs = ()
            self._host, self._device = [], []
            self._stream = None  # cuStreamDestroy, while its context is current
            # TensorRT objects in dependency order: context, engine, runtime
            self.io = None
            self.context = None
            self.engine = None
            self._runtime = None

    def close(self):
        """Free host/device memory, the stream and the engine, then release the context.

        Everything is freed inside the pushed context (pycuda frees an allocation in the
        context it belongs to; from another thread it could not switch to it), then the
        context is popped and detached (for the primary context, detach() is
        cuDevicePrimaryCtxRelease). Idempotent.
        """
        with self._lock:
            context, self._context_cuda = getattr(self, "_context_cuda", None), None
            if context is None:
                return
            context.push()
            try:
                self._release()
            finally:
                context.pop()
                context.detach()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
