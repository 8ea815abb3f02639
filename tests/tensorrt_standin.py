"""Stand-in ``tensorrt`` and ``pycuda.driver`` modules: TensorRT's Python API without a GPU.

Every test that fakes TensorRT uses this module, in process (:func:`install`) or in a
subprocess (:func:`write_modules`). One engine model, three API generations, as NVIDIA's
bindings define them (NVIDIA/TensorRT python/src/infer/pyCore.cpp and
python/src/parsers/pyOnnx.cpp at v8.6.0 and v10.3.0):

- ``api="8"`` (8.0-8.4, JetPack 4.6's 8.0/8.2): engine ``num_bindings``,
  ``get_binding_name/shape/dtype(index)``, ``binding_is_input(index)``; context
  ``execute_async_v2(bindings, stream_handle) -> bool``; builder config
  ``max_workspace_size``; builder ``build_engine`` beside ``build_serialized_network``;
  parser errors ``node()``, ``desc()``.
- ``api="8.6"`` (8.5/8.6): both engine and context APIs, ``max_workspace_size`` and
  ``set_memory_pool_limit``.
- ``api="10"`` (10.x): engine ``num_io_tensors``, ``get_tensor_name(index)``,
  ``get_tensor_mode/shape/dtype(name)`` (``TensorIOMode.INPUT``/``OUTPUT``); context
  ``set_tensor_address(name, memory) -> bool``, ``execute_async_v3(stream_handle) -> bool``;
  ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, size)``; ``build_serialized_network``
  only; parser errors add ``node_name()``, ``node_operator()`` (since 9.x).
- ``api="11"`` (11.x, pyCore.cpp at v11.0): the 10.x API without ``BuilderFlag.FP16``,
  ``Builder.platform_has_fast_fp16`` and ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``
  (networks are strongly typed: their precision comes from the ONNX's types).

All of them: ``Builder(logger)`` with ``platform_has_fast_fp16`` (not 11), ``create_network
(flags)`` (``NetworkDefinitionCreationFlag.EXPLICIT_BATCH``, not 11),
``create_builder_config()``; config ``set_flag``/``clear_flag`` (``BuilderFlag.FP16`` (not
11)/``TF32``), ``create_timing_cache(data)``,
``set_timing_cache(cache, ignore_mismatch) -> bool``, ``get_timing_cache()``;
``Runtime(logger).deserialize_cuda_engine(data)`` -> engine or None;
``OnnxParser(network, logger)`` with ``parse``, ``num_errors``, ``get_error(index)``.

pycuda.driver (2021.1), :class:`FakeCuda`: ``init()``, ``Device(i)`` with ``name()``,
``retain_primary_context()`` (not made current) and ``make_context()`` (made current),
contexts with ``push``/``pop``/``detach``, ``Stream()`` with ``handle``/``synchronize()``,
``pagelocked_empty(shape, dtype)`` (the array's ``.base`` is the allocation),
``mem_alloc(nbytes)`` (``int()`` is the device address), ``memcpy_htod_async`` /
``memcpy_dtoh_async(dest, src, stream)``, ``Error``. Device memory lives in bytearrays;
everything that needs a current CUDA context asserts one, and ``log`` records the order.

Python 3.6 syntax, numpy only: tests/py36 import it too.
"""
import os
import signal
import sys
import threading
import time
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The I/O of the stand-in engine: NCHW input, NHWC single-channel output (a nanoseg model).
STANDARD_IO = (("input", (1, 3, 64, 96), "FLOAT", True),
               ("probabilities", (1, 64, 96, 1), "FLOAT", False))
NUMPY_TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32}


class Named(object):
    """An enum member as the bindings expose it: ``.name`` is what nanoseg reads."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "Named({!r})".format(self.name)


# -- engines and execution contexts ---------------------------------------------------------
class _Engine(object):
    """I/O tensors, a numpy ``forward`` and the context class to create."""

    context_class = None

    def __init__(self, io=STANDARD_IO, forward=None, cuda=None, context_class=None):
        self.io, self.forward, self.cuda = tuple(io), forward, cuda
        self.context_class = context_class or self.context_class
        self.context = None

    def create_execution_context(self):
        self.context = self.context_class(self, self.cuda)
        return self.context


class Engine8(_Engine):
    """The binding API (TensorRT 8.0-8.4)."""

    @property
    def num_bindings(self):
        return len(self.io)

    def get_binding_name(self, index):
        return self.io[index][0]

    def get_binding_shape(self, index):
        return self.io[index][1]

    def get_binding_dtype(self, index):
        return Named(self.io[index][2])

    def binding_is_input(self, index):
        return self.io[index][3]


class Engine10(_Engine):
    """The named-tensor API (TensorRT >= 8.5; the only one in 10.x)."""

    def _tensor(self, name):
        return [t for t in self.io if t[0] == name][0]

    @property
    def num_io_tensors(self):
        return len(self.io)

    def get_tensor_name(self, index):
        return self.io[index][0]

    def get_tensor_shape(self, name):
        return self._tensor(name)[1]

    def get_tensor_dtype(self, name):
        return Named(self._tensor(name)[2])

    def get_tensor_mode(self, name):
        return Named("INPUT" if self._tensor(name)[3] else "OUTPUT")


class Engine86(Engine8, Engine10):
    """TensorRT 8.5/8.6: both engine APIs."""


class _Context(object):
    """Records every call in ``calls``; with a FakeCuda, runs the engine's ``forward`` on
    the device buffers (which needs a current CUDA context)."""

    def __init__(self, engine=None, cuda=None):
        self.engine, self.cuda = engine, cuda
        self.calls = []

    def _run(self, addresses):
        if self.cuda is None or self.engine is None or self.engine.forward is None:
            return
        assert self.cuda.stack, "enqueued with no current context"
        io = self.engine.io
        inputs = [np.frombuffer(bytes(self.cuda.memory(a)), NUMPY_TYPES[t[2]]).reshape(t[1])
                  for t, a in zip(io, addresses) if t[3]]
        outputs = self.engine.forward(inputs)
        for tensor, address, out in zip([t for t in io if not t[3]],
                                        [a for t, a in zip(io, addresses) if not t[3]],
                                        outputs):
            data = np.asarray(out, NUMPY_TYPES[tensor[2]]).reshape(tensor[1])
            self.cuda.memory(address)[:] = data.tobytes()


class Context8(_Context):
    def execute_async_v2(self, bindings, stream_handle):
        self.calls.append(("v2", list(bindings), stream_handle))
        self._run(list(bindings))
        return True


class Context10(_Context):
    def __init__(self, engine=None, cuda=None):
        _Context.__init__(self, engine, cuda)
        self.addresses = {}

    def set_tensor_address(self, name, memory):
        self.calls.append(("address", name, memory))
        self.addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle):
        self.calls.append(("v3", stream_handle))
        if self.engine is not None:
            self._run([self.addresses[t[0]] for t in self.engine.io])
        return True


class Context86(Context8, Context10):
    """TensorRT 8.5/8.6: execute_async_v2 and v3."""


Engine8.context_class, Engine10.context_class, Engine86.context_class = (
    Context8, Context10, Context86)


def channel_sum(inputs):
    """The default engine: output (1,H,W,1) = input (1,3,H,W) summed over channels."""
    return [inputs[0].sum(axis=1)[..., None]]


def sigmoid_conv(inputs, weights=(0.5, -0.25, 1.0)):
    """A 1x1 conv + sigmoid, NCHW in, NHWC out; its bias is $FAKE_TRT_BIAS (default -0.2),
    read at every call, so a test can make the engine disagree with Keras."""
    z = np.tensordot(np.asarray(weights, np.float32), inputs[0][0], axes=1) + \
        float(os.environ.get("FAKE_TRT_BIAS", "-0.2"))
    return [(1.0 / (1.0 + np.exp(-z)))[None, :, :, None]]


FORWARDS = {"channel_sum": channel_sum, "sigmoid_conv": sigmoid_conv}


# -- builder parts ----------------------------------------------------------------------------
class TimingCache(object):
    """A timing cache: ``cache:<TensorRT version>`` then what was timed (``header`` is what
    an empty cache serializes to once a config of some TensorRT version took it)."""

    def __init__(self, data, header=b""):
        self.data, self.header = bytes(data), header

    def serialize(self):
        return memoryview((self.data or self.header) + b"+timings")


class _Config(object):
    """IBuilderConfig: flags, the timing cache (``calls`` records create/set)."""

    def __init__(self, trt):
        self.trt, self.flags, self.attached, self.calls = trt, set(), None, []

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)
        self.flags.add("no " + flag)

    def create_timing_cache(self, serialized_timing_cache):
        """Raises on bytes that are no timing cache at all, like TensorRT's deserializer."""
        data = bytes(serialized_timing_cache)
        self.calls.append(("create", data))
        if data and not data.startswith(b"cache:"):
            raise RuntimeError("Serialization assertion failed: magic tag mismatch")
        return TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        """False for a cache another TensorRT version made (its header says which)."""
        self.calls.append(("set", cache.data, ignore_mismatch))
        header = b"cache:" + self.trt.__version__.encode()
        if cache.data and not cache.data.startswith(header):
            return False
        self.trt.loaded_caches.append(cache.data)
        cache.header, self.attached = header, cache
        return True

    def get_timing_cache(self):
        return self.attached


class _TacticSources(object):
    """get/set_tactic_sources (7.2+): a bit mask, ``1 << int(TacticSource.X)``."""

    tactic_sources = None

    def get_tactic_sources(self):
        default = [m for m in ("CUBLAS", "CUBLAS_LT", "CUDNN")
                   if hasattr(self.trt.TacticSource, m)]
        mask = sum(1 << int(getattr(self.trt.TacticSource, m)) for m in default)
        return mask if self.tactic_sources is None else self.tactic_sources

    def set_tactic_sources(self, tactic_sources):
        self.tactic_sources = int(tactic_sources)
        self.trt.tactic_masks.append(self.tactic_sources)
        return True


class _ProgressMonitorProperty(object):
    """``config.progress_monitor`` (9.1+)."""

    progress_monitor = None


class _WorkspaceSize(object):
    """TensorRT < 10: the workspace limit as an attribute."""

    max_workspace_size = 0


class _MemoryPools(object):
    """TensorRT >= 8.4: memory pool limits."""

    def set_memory_pool_limit(self, pool, pool_size):
        self.calls.append((pool, pool_size))


class _SerializedEngine(object):
    def __init__(self, plan):
        self.plan = plan

    def serialize(self):
        return self.plan


# A small Unet's layers as the ONNX parser names them (after the ONNX nodes): name, type.
NETWORK_LAYERS = (("conv1", "CONVOLUTION"), ("relu1", "ACTIVATION"), ("up1", "RESIZE"),
                  ("concat1", "CONCATENATION"), ("final_conv", "CONVOLUTION"),
                  ("sigmoid", "ACTIVATION"), ("to_nhwc", "SHUFFLE"))


class Tensor(object):
    def __init__(self, dtype):
        self.dtype = dtype


class StronglyTypedLayer(object):
    """ILayer of 11.x: ``name``, ``type``, ``num_outputs``, ``get_output(i).dtype``."""

    def __init__(self, trt, name, kind):
        self.trt, self.name, self.type = trt, name, getattr(trt.LayerType, kind)
        self.num_outputs, self._precision = 1, None
        self._outputs = [Tensor(trt.DataType.FLOAT)]

    def get_output(self, index):
        return self._outputs[index]


class Layer(StronglyTypedLayer):
    """ILayer of 8.0-10.x: also ``precision`` and ``set_output_type(i, dtype)`` (both
    recorded in the module's ``layer_calls``)."""

    @property
    def precision(self):
        return self._precision

    @precision.setter
    def precision(self, dtype):
        self.trt.layer_calls.append(("precision", self.name, dtype.name))
        self._precision = dtype

    def set_output_type(self, index, dtype):
        self.trt.layer_calls.append(("output_type", self.name, index, dtype.name))


class Network(object):
    """INetworkDefinition: ``num_layers``, ``get_layer(i)``."""

    def __init__(self, trt, flags):
        self.flags = flags
        kind_of_layer = StronglyTypedLayer if trt.api == "11" else Layer
        self.layers = [kind_of_layer(trt, name, kind) for name, kind in NETWORK_LAYERS]

    @property
    def num_layers(self):
        return len(self.layers)

    def get_layer(self, index):
        return self.layers[index]


class _Builder(object):
    """IBuilder; counts builders and builds on the module (``builders``, ``builds``).

    The plan is b"plan:<version>:<fp16|fp32>:<build number>", then ":pinned=<n>" when n
    layers were kept in FP32 (what Runtime deserializes). A build logs the module's
    ``build_warnings`` through the builder's logger, reports its phases to an attached
    progress monitor (10.x/11.x), and with $FAKE_TRT_BUILD_KILL set is killed by SIGKILL,
    as the kernel's OOM killer does.
    """

    def __init__(self, logger):
        self.trt.builders += 1
        self.logger = logger
        if self.trt.api != "11":
            self.platform_has_fast_fp16 = self.trt.fast_fp16

    def create_network(self, flags=0):
        self.network = Network(self.trt, flags)
        return self.network

    def create_builder_config(self):
        return self.config_class(self.trt)

    def build_serialized_network(self, network, config):
        if os.environ.get("FAKE_TRT_BUILD_KILL"):
            os.kill(os.getpid(), signal.SIGKILL)
        monitor = getattr(config, "progress_monitor", None)
        if monitor is not None:
            monitor.phase_start("Building engine", None, 2)
            monitor.phase_start("Tactic timing", "Building engine", 3)
            for step in range(3):
                time.sleep(float(os.environ.get("FAKE_TRT_STEP_SECONDS", "0")))
                assert monitor.step_complete("Tactic timing", step) is True
            monitor.phase_finish("Tactic timing")
            monitor.step_complete("Building engine", 0)
            monitor.phase_finish("Building engine")
        for message in self.trt.build_warnings:
            self.logger.log(self.trt.ILogger.Severity.WARNING, message)
        if self.trt.build_fails:
            return None
        self.trt.builds.append(sorted(str(f) for f in config.flags))
        pinned = [c for c in self.trt.layer_calls if c[0] == "precision"]
        return "plan:{}:{}:{}{}".format(
            self.trt.__version__, "fp16" if "FP16" in config.flags else "fp32",
            len(self.trt.builds), ":pinned={}".format(len(pinned)) if pinned else "").encode()


class _BuildEngine(object):
    """TensorRT < 10: build_engine(network, config) -> an engine to serialize."""

    def build_engine(self, network, config):
        plan = self.build_serialized_network(network, config)
        return None if plan is None else _SerializedEngine(plan)


class ParserError8(object):
    """An ONNX parser error of TensorRT 8.x: the node index and the message."""

    def __init__(self, node, desc):
        self._node, self._desc = node, desc

    def node(self):
        return self._node

    def desc(self):
        return self._desc


class ParserError10(ParserError8):
    """TensorRT >= 9: also the node's name and operator."""

    def __init__(self, node, desc, name, operator):
        ParserError8.__init__(self, node, desc)
        self._name, self._operator = name, operator

    def node_name(self):
        return self._name

    def node_operator(self):
        return self._operator


class _OnnxParser(object):
    def __init__(self, network, logger):
        self.errors = list(self.trt.parse_errors)

    @property
    def num_errors(self):
        return len(self.errors)

    def parse(self, model):
        return not self.errors

    def get_error(self, index):
        return self.errors[index]


APIS = {  # api -> (default version, engine class, builder config mixins, builder mixins)
    "8.0": ("8.0.1.6", Engine8, (_WorkspaceSize, _TacticSources), (_BuildEngine,)),
    "8": ("8.2.1.8", Engine8, (_WorkspaceSize, _TacticSources), (_BuildEngine,)),
    "8.6": ("8.6.1", Engine86, (_WorkspaceSize, _MemoryPools, _TacticSources),
            (_BuildEngine,)),
    "10": ("10.3.0", Engine10, (_MemoryPools, _TacticSources, _ProgressMonitorProperty), ()),
    "11": ("11.0.0", Engine10, (_MemoryPools, _TacticSources, _ProgressMonitorProperty), ()),
}
# TacticSource members per API (pyCore.cpp): 8.0/8.2 three, 8.5+ five, 11.0 two.
TACTIC_SOURCES = {"8.0": ("CUBLAS", "CUBLAS_LT", "CUDNN"), "8": ("CUBLAS", "CUBLAS_LT", "CUDNN"),
                  "8.6": ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS",
                          "JIT_CONVOLUTIONS"),
                  "10": ("CUBLAS", "CUBLAS_LT", "CUDNN", "EDGE_MASK_CONVOLUTIONS",
                         "JIT_CONVOLUTIONS"),
                  "11": ("EDGE_MASK_CONVOLUTIONS", "JIT_CONVOLUTIONS")}
TACTIC_BITS = {"CUBLAS": 0, "CUBLAS_LT": 1, "CUDNN": 2, "EDGE_MASK_CONVOLUTIONS": 3,
               "JIT_CONVOLUTIONS": 4}


class IntNamed(Named):
    """An arithmetic enum member (``int()`` works, as pybind's py::arithmetic enums)."""

    def __init__(self, name, value):
        Named.__init__(self, name)
        self.value = value

    def __int__(self):
        return self.value

    def __eq__(self, other):
        return isinstance(other, Named) and other.name == self.name

    def __hash__(self):
        return hash(self.name)

    def __str__(self):
        return self.name


class _ILogger(object):
    """trt.ILogger: a base class with ``Severity``; subclasses define ``log``."""

    Severity = types.SimpleNamespace(**dict(
        (n, IntNamed(n, v)) for v, n in enumerate(
            ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"))))


class _IProgressMonitor(object):
    """trt.IProgressMonitor (9.1+): subclasses call ``__init__`` and define the three."""

    def __init__(self):
        self.initialised = True


def make_tensorrt(api="10", version=None, cuda=None, forward=channel_sum, io=STANDARD_IO,
                  context_class=None, fast_fp16=True, parse_errors=(), build_fails=False,
                  build_warnings=()):
    """A ``tensorrt`` module of API generation ``api`` ("8.0", "8", "8.6", "10" or "11").

    With $FAKE_TRT_FP16_NAN set, an FP16 plan with no layer kept in FP32 outputs NaN.

    ``Runtime`` deserializes any plan starting with b"plan" into an engine with ``io`` that
    computes ``forward`` on ``cuda``'s buffers (None: an engine that records calls only);
    anything else is an engine of another TensorRT (None). The module counts ``builders``
    and ``builds`` (the flags of each) and the timing caches it ``loaded_caches``.
    """
    default_version, engine_class, config_mixins, builder_mixins = APIS[api]
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version or default_version
    trt.api = api
    trt.fast_fp16, trt.parse_errors, trt.build_fails = fast_fp16, list(parse_errors), build_fails
    trt.builders, trt.builds, trt.loaded_caches = 0, [], []
    trt.build_warnings, trt.layer_calls, trt.tactic_masks = list(build_warnings), [], []
    trt.ILogger = type("ILogger", (_ILogger,), {})

    class Logger(trt.ILogger):
        WARNING = _ILogger.Severity.WARNING

        def __init__(self, severity=WARNING):
            self.severity = severity

        def log(self, severity, msg):
            pass

    class Runtime(object):
        def __init__(self, logger):
            assert cuda is None or cuda.stack, "engine deserialized with no current context"

        def deserialize_cuda_engine(self, serialized_engine):
            plan = bytes(serialized_engine)
            if not plan.startswith(b"plan"):
                return None
            run = forward
            if os.environ.get("FAKE_TRT_FP16_NAN") and b":fp16:" in plan \
                    and b"pinned" not in plan:
                run = lambda inputs: [np.full_like(forward(inputs)[0], np.nan)]  # noqa: E731
            return engine_class(io, run if cuda is not None else None, cuda, context_class)

    trt.Logger, trt.Runtime = Logger, Runtime
    trt.DataType = types.SimpleNamespace(FLOAT=IntNamed("FLOAT", 0), HALF=IntNamed("HALF", 1),
                                         INT32=IntNamed("INT32", 3))
    trt.LayerType = types.SimpleNamespace(**dict((n, IntNamed(n, i)) for i, n in enumerate(
        ("CONVOLUTION", "ACTIVATION", "RESIZE", "CONCATENATION", "SHUFFLE"))))
    trt.TacticSource = types.SimpleNamespace(**dict(
        (n, IntNamed(n, TACTIC_BITS[n])) for n in TACTIC_SOURCES[api]))
    if api in ("10", "11"):
        trt.IProgressMonitor = type("IProgressMonitor", (_IProgressMonitor,), {})
    trt.TensorIOMode = types.SimpleNamespace(INPUT=Named("INPUT"), OUTPUT=Named("OUTPUT"))
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    if api == "11":
        trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)
        trt.BuilderFlag = types.SimpleNamespace(TF32="TF32")
    else:
        trt.NetworkDefinitionCreationFlag = types.SimpleNamespace(EXPLICIT_BATCH=0)
        flags = {"8.0": ("STRICT_TYPES",), "8": ("STRICT_TYPES", "OBEY_PRECISION_CONSTRAINTS"),
                 "8.6": ("STRICT_TYPES", "OBEY_PRECISION_CONSTRAINTS"),
                 "10": ("OBEY_PRECISION_CONSTRAINTS",)}[api]
        trt.BuilderFlag = types.SimpleNamespace(FP16="FP16", TF32="TF32",
                                                **dict((f, f) for f in flags))
    config_class = type("IBuilderConfig", config_mixins + (_Config,), {})
    trt.Builder = type("Builder", builder_mixins + (_Builder,),
                       {"trt": trt, "config_class": config_class})
    trt.OnnxParser = type("OnnxParser", (_OnnxParser,), {"trt": trt})
    return trt


# -- pycuda.driver ------------------------------------------------------------------------
class FakeCudaError(Exception):
    """What pycuda.driver raises (pycuda.driver.Error)."""


class FakeCudaContext(object):
    def __init__(self, cuda, name):
        self.cuda, self.name = cuda, name

    def push(self):
        self.cuda.stack.append(self)
        self.cuda.log.append(("push", self.name, threading.current_thread().name))

    def pop(self):  # pycuda: a static method popping whatever is current
        if not self.cuda.stack:
            raise FakeCudaError("context::pop: cannot pop non-current context")
        self.cuda.log.append(("pop", self.cuda.stack.pop().name))

    def detach(self):
        self.cuda.log.append(("detach", self.name))
        self.cuda.detached.append(self)


class OldFakeDevice(object):
    """A pycuda without retain_primary_context: make_context() pushes a new context."""

    def __init__(self, cuda, index):
        self.cuda, self.index = cuda, index

    def name(self):
        return self.cuda.device_name

    def make_context(self):
        context = FakeCudaContext(self.cuda, "own")
        context.push()
        return context


class FakeDevice(OldFakeDevice):
    def retain_primary_context(self):  # not made current (cuDevicePrimaryCtxRetain)
        self.cuda.log.append(("retain", self.index))
        return FakeCudaContext(self.cuda, "primary")


class FakeAllocation(bytearray):
    """Device memory (or, as a numpy buffer, page-locked host memory) that must be freed."""

    def __init__(self, cuda, nbytes, kind):
        bytearray.__init__(self, nbytes)
        self.cuda, self.kind, self.freed = cuda, kind, False
        self.address = 0x10000 + 0x1000 * len(cuda.allocations)
        cuda.allocations.append(self)

    def __int__(self):
        return self.address

    def free(self):
        assert self.cuda.stack, "{} freed with no current context".format(self.kind)
        self.freed = True
        self.cuda.log.append(("free", self.kind))


class FakeStream(object):
    handle = 42

    def __init__(self, cuda):
        assert cuda.stack, "stream created with no current context"
        self.cuda = cuda

    def synchronize(self):
        pass

    def __del__(self):
        self.cuda.log.append(("stream destroyed", bool(self.cuda.stack)))


class FakeCuda(object):
    """The parts of pycuda.driver TrtRunner uses, as an object that stands in for the module.

    ``log`` records pushes, pops, frees and detaches in order; ``stack`` is the current
    context stack; ``init_error`` makes ``init()`` fail like a machine without a GPU.
    """

    def __init__(self, device_class=FakeDevice, init_error=None, device_name="Fake Tegra X1"):
        self.device_class, self.init_error = device_class, init_error
        self.device_name = device_name
        self.log, self.stack, self.allocations, self.detached = [], [], [], []
        self.Error = FakeCudaError

    def init(self):
        if self.init_error:
            raise FakeCudaError(self.init_error)

    def Device(self, index):
        return self.device_class(self, index)

    def Stream(self):
        return FakeStream(self)

    def pagelocked_empty(self, shape, dtype):
        assert self.stack, "host memory allocated with no current context"
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.ndarray(shape, dtype, buffer=FakeAllocation(self, nbytes, "host"))

    def mem_alloc(self, nbytes):
        assert self.stack, "device memory allocated with no current context"
        return FakeAllocation(self, nbytes, "device")

    def memory(self, address):
        return [a for a in self.allocations if a.kind == "device" and a.address == address][0]

    def memcpy_htod_async(self, dest, src, stream=None):
        dest[:] = src.tobytes()

    def memcpy_dtoh_async(self, dest, src, stream=None):
        dest[...] = np.frombuffer(bytes(src), dest.dtype).reshape(dest.shape)


# -- installing them ------------------------------------------------------------------------
def install(monkeypatch, cuda, trt):
    """Make ``import tensorrt`` and ``import pycuda.driver`` return the stand-ins."""
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)


_TENSORRT_SHIM = '''import sys
sys.path.insert(0, {root!r})
import pycuda.driver
from tests import tensorrt_standin
import os
sys.modules[__name__] = tensorrt_standin.make_tensorrt(
    {api!r}, cuda=sys.modules["pycuda.driver"], forward=tensorrt_standin.FORWARDS[{forward!r}],
    build_warnings=[w for w in os.environ.get("FAKE_TRT_BUILD_WARNINGS", "").split("|") if w])
'''
_PYCUDA_SHIM = '''import sys
sys.path.insert(0, {root!r})
from tests import tensorrt_standin
sys.modules[__name__] = tensorrt_standin.FakeCuda(device_name={device!r})
'''


def write_modules(folder, api="8", forward="sigmoid_conv", device_name="Stand-in GPU"):
    """Write ``tensorrt.py`` and ``pycuda/driver.py`` into ``folder`` (put it on a
    subprocess's PYTHONPATH): each replaces itself, on import, with the stand-in
    ($FAKE_TRT_BUILD_WARNINGS: messages the builder logs, separated by ``|``)."""
    folder = str(folder)
    os.makedirs(os.path.join(folder, "pycuda"))
    with open(os.path.join(folder, "pycuda", "__init__.py"), "w") as handle:
        handle.write("")
    with open(os.path.join(folder, "pycuda", "driver.py"), "w") as handle:
        handle.write(_PYCUDA_SHIM.format(root=ROOT, device=device_name))
    with open(os.path.join(folder, "tensorrt.py"), "w") as handle:
        handle.write(_TENSORRT_SHIM.format(root=ROOT, api=api, forward=forward))
    return folder
