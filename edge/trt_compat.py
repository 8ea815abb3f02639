"""The one module that knows how TensorRT 8.x and 10.x differ (Python API).

JetPack 4.6.x ships TensorRT 8.0/8.2 (bindings, ``execute_async_v2``,
``max_workspace_size``, ``build_engine``); TensorRT 10 removed those for tensor names,
``set_tensor_address`` + ``execute_async_v3``, memory pools and
``build_serialized_network``. Every choice below is made by feature detection (``hasattr``)
on the object at hand - never by comparing version strings - so 8.5/8.6, which have both
APIs, take the newer one. Everything takes the objects (and, for enums, the ``tensorrt``
module) as arguments, so it is testable with stand-ins on machines without a GPU.

Python 3.6; imports tensorrt only inside :func:`import_tensorrt`.
"""
import collections

from edge.errors import NanosegError

NOT_INSTALLED = ("TensorRT is not installed: {} runs on the Jetson (JetPack provides "
                 "tensorrt; on a desktop check the ONNX with convert/check_onnx.py)")

# tensorrt.DataType member name -> numpy dtype name.
NUMPY_DTYPES = {"FLOAT": "float32", "HALF": "float16", "INT8": "int8", "INT32": "int32",
                "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}


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
    """pycuda.driver (CUDA is initialised by the caller), or a one-line NanosegError."""
    try:
        import pycuda.driver as cuda
    except ImportError:
        raise NanosegError("pycuda is not installed: on the Jetson run "
                           "'pip3 install pycuda' (JetPack has the CUDA headers it needs)")
    return cuda


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
    """[TensorInfo] in the engine's I/O order (the order :func:`execute` takes addresses)."""
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


def set_workspace(config, nbytes, trt=None):
    """Limit the builder's scratch memory: memory pools (>= 8.4) or max_workspace_size."""
    if hasattr(config, "set_memory_pool_limit"):
        trt = trt or import_tensorrt()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(nbytes))
    else:
        config.max_workspace_size = int(nbytes)


def create_network(builder, trt=None):
    """An explicit-batch network (the only kind the ONNX parser fills; default in 10.x)."""
    trt = trt or import_tensorrt()
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    return builder.create_network(0 if flag is None else 1 << int(flag))


def platform_has_fast_fp16(builder):
    """FP16 worth using? (the Nano: yes). TensorRT 10 dropped the query: assume yes."""
    return bool(getattr(builder, "platform_has_fast_fp16", True))


def build_serialized(builder, network, config):
    """Build and serialize: build_serialized_network (>= 8.0) or build_engine().serialize().

    Returns the plan bytes, or None when TensorRT failed (it logged why).
    """
    if hasattr(builder, "build_serialized_network"):
        return builder.build_serialized_network(network, config)
    engine = builder.build_engine(network, config)
    return None if engine is None else engine.serialize()


def load_timing_cache(config, data):
    """Give the builder a timing cache (empty bytes -> a fresh one); False if unsupported."""
    if not hasattr(config, "create_timing_cache"):
        return False
    cache = config.create_timing_cache(data or b"")
    config.set_timing_cache(cache, False)
    return True


def serialize_timing_cache(config):
    """Timing cache bytes after a build, or None when this TensorRT has none."""
    if not hasattr(config, "get_timing_cache"):
        return None
    cache = config.get_timing_cache()
    return None if cache is None else bytes(memoryview(cache.serialize()))


def execute(context, engine, addresses, stream_handle):
    """Enqueue one inference; ``addresses`` are device pointers in :func:`io_tensors` order."""
    if hasattr(context, "execute_async_v3"):
        for info, address in zip(io_tensors(engine), addresses):
            context.set_tensor_address(info.name, int(address))
        ok = context.execute_async_v3(stream_handle)
    else:
        ok = context.execute_async_v2(bindings=[int(a) for a in addresses],
                                      stream_handle=stream_handle)
    if not ok:
        raise NanosegError("TensorRT failed to enqueue the engine (see the TensorRT log): "
                           "rebuild it on this device with convert/build_engine.py --force")


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
