"""The one module that knows how TensorRT 8.x, 10.x and 11.x differ (Python API).

JetPack 4.6.x ships TensorRT 8.0/8.2 (bindings, ``execute_async_v2``,
``max_workspace_size``, ``build_engine``); TensorRT 10 removed those for tensor names,
``set_tensor_address`` + ``execute_async_v3``, memory pools and
``build_serialized_network``; TensorRT 11 removed ``BuilderFlag.FP16``,
``platform_has_fast_fp16`` and ``EXPLICIT_BATCH`` (strongly typed networks only). Every
choice below is made by feature detection (``hasattr``) on the object at hand - never by
comparing version strings - so 8.5/8.6, which have both APIs, take the newer one. Per engine the detection happens once, in :class:`EngineIO`,
when the engine is loaded; the per-frame path is a single enqueue call. Everything takes
the objects (and, for enums, the ``tensorrt`` module) as arguments, so it is testable with
stand-ins on machines without a GPU.

Python 3.6; imports tensorrt only inside :func:`import_tensorrt`, pycuda only inside
:func:`import_pycuda`.
"""
import collections
import logging

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

NOT_INSTALLED = ("TensorRT is not installed: {} runs on the Jetson (JetPack provides "
                 "tensorrt; on a desktop check the ONNX with convert/check_onnx.py)")

# tensorrt.DataType member name -> numpy dtype name.
NUMPY_DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}

# What load_timing_cache() did.
CACHE_UNSUPPORTED, CACHE_FRESH, CACHE_LOADED, CACHE_REJECTED = (
    "unsupported", "fresh", "loaded", "rejected")


class TensorInfo(collections.namedtuple("TensorInfo", "name shape dtype is_input")):
    """One engine I/O tensor: name, shape (tuple of int, -1 = dynamic), numpy dtype name."""


def import_tensorrt(user="build_engine.py"):
    """The tensorrt module, or a NanosegError saying in one line that ``user`` needs it."""
    try:
        import tensorrt
    except ImportError:
        raise NanosegError(NOT_INSTALLED.format(user))
    return tensorrt


def import_pycuda():
    """pycuda.driver (CUDA is initialised by :func:`cuda_device`), or a one-line error."""
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise NanosegError("pycuda is not installed: on the Jetson run 'bash jetson/setup.sh' "
                           "(it builds pycuda 2021.1 against CUDA 10.2)")
    return cuda


def cuda_device(cuda, index=0):
    """``cuda.init()`` + ``cuda.Device(index)``; a missing/hidden GPU is a one-line error.

    pycuda raises its own ``pycuda.driver.Error`` subclasses (e.g. "cuInit failed: no
    CUDA-capable device is detected", "invalid device ordinal"): they become
    "no CUDA GPU visible: ..." naming the usual causes.
    """
    try:
        cuda.init()
        return cuda.Device(index)
    except Exception as exc:  # pycuda.driver.Error, RuntimeError from a broken driver
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NanosegError("no CUDA GPU visible: {} (device {}: run this on the Jetson, with "
                           "JetPack's CUDA driver, and check that CUDA_VISIBLE_DEVICES does "
                           "not hide the GPU)".format(detail, index))


def numpy_dtype(trt_dtype):
    """numpy dtype name of a tensorrt.DataType (by member name: no enum import needed)."""
    name = getattr(trt_dtype, "name", str(trt_dtype).split(".")[-1])
    if name not in NUMPY_DTYPES:
        raise NanosegError("engine tensor type {} has no numpy equivalent: rebuild the engine "
                           "from a float32-I/O ONNX".format(name))
    return NUMPY_DTYPES[name]


def has_tensor_api(engine):
    """True on TensorRT >= 8.5 (named I/O tensors); False on 8.0-8.4 (binding indices)."""
    return hasattr(engine, "num_io_tensors")


def io_tensors(engine):
    """[TensorInfo] in the engine's I/O order (binding order on 8.x)."""
    infos = []
    if has_tensor_api(engine):
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            mode = engine.get_tensor_mode(name)
            infos.append(TensorInfo(name, tuple(int(d) for d in engine.get_tensor_shape(name)),
                                    numpy_dtype(engine.get_tensor_dtype(name)),
                                    getattr(mode, "name", str(mode)).endswith("INPUT")))
    else:
        for i in range(engine.num_bindings):
            infos.append(TensorInfo(engine.get_binding_name(i),
                                    tuple(int(d) for d in engine.get_binding_shape(i)),
                                    numpy_dtype(engine.get_binding_dtype(i)),
                                    bool(engine.binding_is_input(i))))
    return infos


class EngineIO(object):
    """An engine's I/O and how to run it, detected once when the engine is loaded.

    ``tensors`` ([TensorInfo]) says what buffers to allocate; :meth:`bind` fixes their
    device addresses (they never move: on 10.x ``set_tensor_address`` is called once per
    tensor here, on 8.x the bindings list is built once); :meth:`execute` is the per-frame
    path: one ``execute_async_v3`` / ``execute_async_v2`` call and its result check.
    """

    def __init__(self, engine, context):
        self.tensors = io_tensors(engine)
        self.uses_tensor_addresses = (has_tensor_api(engine)
                                      and hasattr(context, "execute_async_v3"))
        self._context = context
        self._bindings = None

    def bind(self, addresses):
        """Device pointers, one per tensor in ``tensors`` order (call once, after alloc)."""
        addresses = [int(a) for a in addresses]
        if len(addresses) != len(self.tensors):
            raise NanosegError("{} device buffers for an engine with {} I/O tensors".format(
                len(addresses), len(self.tensors)))
        if self.uses_tensor_addresses:
            for info, address in zip(self.tensors, addresses):
                if not self._context.set_tensor_address(info.name, address):
                    raise NanosegError("TensorRT refused the buffer for tensor '{}': rebuild "
                                       "the engine on this device with "
                                       "convert/build_engine.py --force".format(info.name))
        else:
            self._bindings = addresses

    def execute(self, stream_handle):
        """Enqueue one inference on the stream (buffers from :meth:`bind`)."""
        if self.uses_tensor_addresses:
            ok = self._context.execute_async_v3(stream_handle)
        else:
            ok = self._context.execute_async_v2(bindings=self._bindings,
                                                stream_handle=stream_handle)
        if not ok:
            raise NanosegError("TensorRT failed to enqueue the engine (see the TensorRT log): "
                               "rebuild it on this device with convert/build_engine.py "
                               "--force")


def set_workspace(config, nbytes, trt=None):
    """Limit the builder's scratch memory: memory pools (>= 8.4) or max_workspace_size."""
    if hasattr(config, "set_memory_pool_limit"):
        trt = trt or import_tensorrt()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
    else:
        config.max_workspace_size = int(nbytes)


def has_fp16_flag(trt=None):
    """Whether the builder can be allowed FP16 layers (``BuilderFlag.FP16``: 8.x-10.x).

    TensorRT 11 removed it: its networks are strongly typed, so an engine's precision is
    the ONNX's own and a float32 ONNX makes an FP32 engine.
    """
    trt = trt or import_tensorrt()
    return hasattr(trt.BuilderFlag, "FP16")


def set_precision(config, fp16, trt=None):
    """FP16 layers allowed (``BuilderFlag.FP16``), or strict float32: TF32 cleared.

    TensorRT enables ``BuilderFlag.TF32`` by default (since 7.1), letting Ampere and newer
    GPUs round FP32 convolution inputs to 10-bit mantissas; an "fp32" engine clears it so
    its results stay within nanoseg.golden.TRT_FP32_MAX_DIFF of Keras on every GPU.
    """
    trt = trt or import_tensorrt()
    if fp16 and not has_fp16_flag(trt):
        raise NanosegError("TensorRT {} has no BuilderFlag.FP16 (strongly typed networks "
                           "take their precision from the ONNX): build with "
                           "--fp32".format(getattr(trt, "__version__", "?")))
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    elif hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)


def create_network(builder, trt=None):
    """An explicit-batch network (the only kind the ONNX parser fills; the default in 10.x,
    and the only kind in 11.x, which removed ``EXPLICIT_BATCH``)."""
    trt = trt or import_tensorrt()
    flags = getattr(trt, "NetworkDefinitionCreationFlag", None)
    if hasattr(flags, "EXPLICIT_BATCH"):
        return builder.create_network(1 << int(flags.EXPLICIT_BATCH))
    return builder.create_network(0)


def platform_has_fast_fp16(builder):
    """FP16 worth using? (the Nano: yes).

    ``platform_has_fast_fp16`` exists on 8.x and 10.x (deprecated since 10.5, in favour of
    asking CUDA); 11.x removed it together with ``BuilderFlag.FP16`` (see
    :func:`has_fp16_flag`, asked first). Without it, assume yes (--fp32 opts out).
    """
    if not hasattr(builder, "platform_has_fast_fp16"):
        return True
    return bool(builder.platform_has_fast_fp16)


def build_serialized(builder, network, config):
    """Build and serialize: build_serialized_network (>= 8.0) or build_engine().serialize().

    Returns the plan bytes, or None when TensorRT failed (it logged why).
    """
    if hasattr(builder, "build_serialized_network"):
        return builder.build_serialized_network(network, config)
    engine = builder.build_engine(network, config)
    return None if engine is None else engine.serialize()


def load_timing_cache(config, data):
    """Attach a timing cache to the builder config; -> one of the CACHE_* strings.

    ``data`` is a serialized cache (or empty for a fresh one). ``set_timing_cache`` returns
    False when the cache's verification header records other CUDA device properties (we
    never pass ignore_mismatch=True: tactics timed on another GPU would mislead the build);
    a cache this TensorRT cannot deserialize (``create_timing_cache`` returns None or
    raises) is treated the same. Either way the build goes on with a fresh cache, after a
    warning.
    """
    if not hasattr(config, "create_timing_cache"):
        return CACHE_UNSUPPORTED
    if data:
        try:
            cache = config.create_timing_cache(bytes(data))
        except Exception as exc:  # a truncated/foreign file: TensorRT raises or logs
            LOG.debug("create_timing_cache failed: %s", exc)
            cache = None
        if cache is not None and config.set_timing_cache(cache, False):
            return CACHE_LOADED
        LOG.warning("the timing cache (%d bytes) was made by another TensorRT version or GPU "
                    "and was rejected: timing every layer again with a fresh cache",
                    len(data))
    cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, False):
        LOG.warning("TensorRT refused an empty timing cache: building without one")
        return CACHE_UNSUPPORTED
    return CACHE_REJECTED if data else CACHE_FRESH


def serialize_timing_cache(config):
    """Timing cache bytes after a build, or None when this TensorRT has none."""
    if not hasattr(config, "get_timing_cache"):
        return None
    cache = config.get_timing_cache()
    return None if cache is None else bytes(memoryview(cache.serialize()))


def parser_errors(parser):
    """The ONNX parser's errors as one-line strings naming the node (index and, on 10.x, name)."""
    lines = []
    for i in range(parser.num_errors):
        error = parser.get_error(i)
        where = "node {}".format(error.node())
        if hasattr(error, "node_name"):
            where += " '{}' ({})".format(error.node_name(), error.node_operator())
        lines.append("{}: {}".format(where, error.desc()))
    return lines


# -- what the builder is allowed: tactic sources, layer precisions, progress, the log ---------
# --tactic-sources name -> TacticSource member. pyCore.cpp: CUBLAS, CUBLAS_LT and CUDNN since
# 8.0 (release/8.0 NvInferRuntime.h kCUDNN = 2); EDGE_MASK_CONVOLUTIONS, JIT_CONVOLUTIONS
# since 8.5; 11.0 has only the last two (cuBLAS/cuDNN tactics were removed).
TACTIC_SOURCES = collections.OrderedDict([
    ("cublas", "CUBLAS"), ("cublaslt", "CUBLAS_LT"), ("cudnn", "CUDNN"),
    ("edge-mask-convolutions", "EDGE_MASK_CONVOLUTIONS"),
    ("jit-convolutions", "JIT_CONVOLUTIONS")])


def parse_tactic_sources(text):
    """``"-cublas,-cublaslt"`` -> its canonical form (sorted, each ``+name``/``-name``).

    No TensorRT needed: a typo is refused before anything slow; whether this TensorRT has
    the source is asked by :func:`set_tactic_sources`.
    """
    changes = {}
    for token in (part.strip().lower() for part in (text or "").split(",")):
        if not token:
            continue
        sign, name = (token[0], token[1:]) if token[0] in "+-" else ("+", token)
        name = name.replace("_", "-")
        if name not in TACTIC_SOURCES:
            raise NanosegError("--tactic-sources: unknown source '{}' (known: {}; e.g. "
                               "-cublas,-cublaslt)".format(name, ", ".join(TACTIC_SOURCES)))
        changes[name] = sign
    return ",".join(changes[name] + name for name in TACTIC_SOURCES if name in changes)


def set_tactic_sources(config, canonical, trt=None):
    """Apply ``+name``/``-name`` to the builder's default tactic sources (a bit mask:
    ``1 << int(TacticSource.X)``, IBuilderConfig get/set_tactic_sources since 7.2)."""
    if not canonical:
        return
    trt = trt or import_tensorrt()
    version = getattr(trt, "__version__", "?")
    if not hasattr(config, "set_tactic_sources"):
        raise NanosegError("TensorRT {} cannot choose tactic sources: build without "
                           "--tactic-sources".format(version))
    mask = int(config.get_tactic_sources())
    for token in canonical.split(","):
        member = getattr(trt.TacticSource, TACTIC_SOURCES[token[1:]], None)
        if member is None:
            have = [n for n, m in TACTIC_SOURCES.items() if hasattr(trt.TacticSource, m)]
            raise NanosegError("TensorRT {} has no tactic source '{}' (it has: {}): change "
                               "--tactic-sources".format(version, token[1:], ", ".join(have)))
        bit = 1 << int(member)
        mask = mask | bit if token[0] == "+" else mask & ~bit
    if config.set_tactic_sources(mask) is False:
        raise NanosegError("TensorRT {} refused --tactic-sources {}: change it".format(
            version, canonical))


def precision_constraint_flag(trt=None):
    """The BuilderFlag that makes layer precisions binding: OBEY_PRECISION_CONSTRAINTS (8.2
    to 10.x), STRICT_TYPES (8.0/8.1; deprecated in 8.2, gone in 10), or None (11.x: layer
    precisions went with FP16, networks are strongly typed)."""
    trt = trt or import_tensorrt()
    for name in ("OBEY_PRECISION_CONSTRAINTS", "STRICT_TYPES"):
        if hasattr(trt.BuilderFlag, name):
            return getattr(trt.BuilderFlag, name)
    return None


def network_layers(network):
    """The network's layers in order (``num_layers``/``get_layer``: 8.0 to 11.x)."""
    return [network.get_layer(i) for i in range(network.num_layers)]


def output_head(layers, trt=None):
    """The layers from the last convolution to the end: the model's output head (its
    logits and activation, where FP16 rounding decides labels)."""
    trt = trt or import_tensorrt()
    convolution = getattr(trt.LayerType, "CONVOLUTION", None)
    found = [i for i, layer in enumerate(layers) if layer.type == convolution]
    return layers[found[-1]:] if found else layers[-1:]


def keep_layers_fp32(layers, config, trt=None):
    """Run ``layers`` in FP32 (``layer.precision`` and ``set_output_type`` per output, 8.0
    to 10.x) and make the builder obey it; -> the names of those pinned. Layers with a
    non-float output (INT32 shape arithmetic) are left alone: FP32 would be an error."""
    trt = trt or import_tensorrt()
    flag = precision_constraint_flag(trt)
    if flag is None or not all(hasattr(layer, "set_output_type") for layer in layers):
        raise NanosegError("TensorRT {} cannot pin layer precisions (strongly typed "
                           "networks): build with --fp32".format(getattr(trt, "__version__",
                                                                        "?")))
    pinned = [layer for layer in layers if all(
        layer.get_output(i).dtype == trt.DataType.FLOAT for i in range(layer.num_outputs))]
    for layer in pinned:
        layer.precision = trt.DataType.FLOAT
        for index in range(layer.num_outputs):
            layer.set_output_type(index, trt.DataType.FLOAT)
    config.set_flag(flag)
    return [layer.name for layer in pinned]


def attach_progress_monitor(config, trt, tracker):
    """Report the builder's phases to ``tracker`` (``phase_start(name, parent, steps)``,
    ``step_complete(name, step)``, ``phase_finish(name)``) where TensorRT has
    IProgressMonitor (9.1+; not 8.x) and ``config.progress_monitor``; -> whether attached.

    TensorRT calls the monitor from its own threads; the subclass must call
    ``IProgressMonitor.__init__`` (samples/python/simple_progress_monitor) and returns True
    from step_complete (False would cancel the build).
    """
    base = getattr(trt, "IProgressMonitor", None)
    if base is None or not hasattr(config, "progress_monitor"):
        return False

    class Monitor(base):
        def __init__(self):
            base.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            tracker.phase_start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name, step):
            tracker.step_complete(phase_name, step)
            return True

        def phase_finish(self, phase_name):
            tracker.phase_finish(phase_name)

    # the config keeps the monitor alive (pybind keep_alive in pyCore.cpp)
    config.progress_monitor = Monitor()
    return True


def recording_logger(trt, record, severity=None):
    """A TensorRT logger that prints as trt.Logger does (WARNING and worse by default) and
    passes every message to ``record(severity_name, message)`` (ILogger subclassed: 8.0+)."""
    base = trt.ILogger
    threshold = int(trt.Logger.WARNING if severity is None else severity)

    class Recorder(base):
        def __init__(self):
            base.__init__(self)

        def log(self, level, msg):
            name = getattr(level, "name", str(level))
            record(name, msg)
            if int(level) <= threshold:
                print("[TensorRT] {}: {}".format(name, msg), flush=True)

    return Recorder()
