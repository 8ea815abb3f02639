"""edge/tensorrt/compat.py against the stand-in TensorRT 8.x, 8.6 and 10.x APIs
(tests/tensorrt_standin.py): feature detection, never version strings."""
import types

import pytest

from edge.tensorrt import compat as trt_compat
from nanoseg.errors import NanosegError
from tests import tensorrt_standin as standin


def config_of(api):
    trt = standin.make_tensorrt(api)
    return trt, trt.Builder(trt.Logger()).create_builder_config()


def test_io_tensors_same_for_both_apis():
    expected = [trt_compat.TensorInfo("input", (1, 3, 64, 96), "float32", True),
                trt_compat.TensorInfo("probabilities", (1, 64, 96, 1), "float32", False)]
    assert trt_compat.io_tensors(standin.Engine8()) == expected
    assert trt_compat.io_tensors(standin.Engine10()) == expected
    assert trt_compat.io_tensors(standin.Engine86()) == expected
    assert not trt_compat.has_tensor_api(standin.Engine8())
    assert trt_compat.has_tensor_api(standin.Engine10())
    with pytest.raises(NanosegError, match="FP8 has no numpy equivalent"):
        trt_compat.numpy_dtype(standin.Named("FP8"))


def test_engine_io_detects_once_and_binds_once():
    io8 = trt_compat.EngineIO(standin.Engine8(), standin.Context8())
    assert not io8.uses_tensor_addresses
    assert io8.tensors == trt_compat.io_tensors(standin.Engine8())
    io8.bind([100, 200])
    for frame in range(3):
        io8.execute(7 + frame)
    assert io8._context.calls == [("v2", [100, 200], 7), ("v2", [100, 200], 8),
                                  ("v2", [100, 200], 9)]
    c10 = standin.Context10()
    io10 = trt_compat.EngineIO(standin.Engine10(), c10)
    assert io10.uses_tensor_addresses
    io10.bind([100, 200])
    for frame in range(3):
        io10.execute(7)
    # the addresses are set once (buffers never move); each frame is one enqueue
    assert c10.calls == [("address", "input", 100), ("address", "probabilities", 200),
                         ("v3", 7), ("v3", 7), ("v3", 7)]
    # 8.5/8.6 engines have the tensor API but a context may lack v3: use the bindings
    assert not trt_compat.EngineIO(standin.Engine86(), standin.Context8()).uses_tensor_addresses
    assert trt_compat.EngineIO(standin.Engine86(), standin.Context86()).uses_tensor_addresses


def test_engine_io_errors_are_one_line():
    failing = standin.Context8()
    failing.execute_async_v2 = lambda bindings, stream_handle: False
    io = trt_compat.EngineIO(standin.Engine8(), failing)
    io.bind([1, 2])
    with pytest.raises(NanosegError, match="failed to enqueue.*--force"):
        io.execute(0)
    with pytest.raises(NanosegError, match="1 device buffers for an engine with 2 I/O"):
        trt_compat.EngineIO(standin.Engine8(), standin.Context8()).bind([1])
    refusing = standin.Context10()
    refusing.set_tensor_address = lambda name, memory: False
    with pytest.raises(NanosegError, match="refused the buffer for tensor 'input'.*--force"):
        trt_compat.EngineIO(standin.Engine10(), refusing).bind([1, 2])


def test_workspace_build_and_network_by_feature():
    trt8, c8 = config_of("8")
    trt10, c10 = config_of("10")
    trt_compat.set_workspace(c8, 256 << 20, trt8)
    trt_compat.set_workspace(c10, 256 << 20, trt10)
    assert c8.max_workspace_size == 256 << 20 and c10.calls == [("WORKSPACE", 256 << 20)]
    assert not hasattr(c10, "max_workspace_size")
    trt86, c86 = config_of("8.6")
    trt_compat.set_workspace(c86, 64 << 20, trt86)          # memory pools where they exist
    assert c86.calls == [("WORKSPACE", 64 << 20)] and c86.max_workspace_size == 0

    class OldEngine(object):
        def serialize(self):
            return b"plan7"

    class Builder7(object):
        """TensorRT 7: build_engine only (not modelled by the stand-in module)."""

        def build_engine(self, network, config):
            return OldEngine()

    builder8, builder10 = trt8.Builder(None), trt10.Builder(None)
    assert trt_compat.build_serialized(Builder7(), None, c8) == b"plan7"
    assert trt_compat.build_serialized(builder8, None, c8) == b"plan:8.2.1.8:fp32:1"
    assert trt_compat.build_serialized(builder10, None, c10) == b"plan:10.3.0:fp32:1"
    assert not hasattr(builder10, "build_engine")
    assert trt_compat.create_network(builder8, trt8).flags == 1
    assert trt_compat.platform_has_fast_fp16(Builder7())  # no attribute: assume fast FP16
    slow = standin.make_tensorrt("8", fast_fp16=False)
    assert not trt_compat.platform_has_fast_fp16(slow.Builder(None))


def test_precision_flags():
    trt, fp16 = config_of("8")
    fp32 = trt.Builder(None).create_builder_config()
    trt_compat.set_precision(fp16, True, trt)
    trt_compat.set_precision(fp32, False, trt)
    assert fp16.flags == {"FP16"}
    assert fp32.flags == {"no TF32"}  # FP32 engines do not round to TF32
    trt.BuilderFlag = types.SimpleNamespace(FP16="FP16")   # before TF32 existed
    old = trt.Builder(None).create_builder_config()
    trt_compat.set_precision(old, False, trt)
    assert old.flags == set()


def test_tensorrt_11_builds_without_the_fp16_flag_and_explicit_batch():
    """11.x dropped BuilderFlag.FP16, platform_has_fast_fp16 and EXPLICIT_BATCH (its
    networks are strongly typed, always explicit batch): detected, never looked up."""
    trt, config = config_of("11")
    builder = trt.Builder(None)
    assert not trt_compat.has_fp16_flag(trt) and trt_compat.has_fp16_flag(config_of("10")[0])
    assert trt_compat.create_network(builder, trt).flags == 0
    assert not hasattr(builder, "platform_has_fast_fp16")
    assert trt_compat.platform_has_fast_fp16(builder) in (True, False)   # asked, no error
    trt_compat.set_precision(config, False, trt)
    assert config.flags == {"no TF32"}
    with pytest.raises(NanosegError, match="TensorRT 11.0.0 has no BuilderFlag.FP16"):
        trt_compat.set_precision(config, True, trt)


def test_timing_cache_load_and_serialize(caplog):
    assert trt_compat.load_timing_cache(object(), b"x") == trt_compat.CACHE_UNSUPPORTED
    assert trt_compat.serialize_timing_cache(object()) is None
    _, fresh = config_of("8")
    assert trt_compat.load_timing_cache(fresh, b"") == trt_compat.CACHE_FRESH
    assert fresh.calls == [("create", b""), ("set", b"", False)]
    _, good = config_of("8")
    cache = b"cache:8.2.1.8:convs"
    assert trt_compat.load_timing_cache(good, cache) == trt_compat.CACHE_LOADED
    assert good.calls == [("create", cache), ("set", cache, False)]
    assert trt_compat.serialize_timing_cache(good) == b"cache:8.2.1.8:convs+timings"
    assert not caplog.records


def test_stale_timing_cache_falls_back_to_a_fresh_one(caplog):
    _, stale = config_of("8")
    assert trt_compat.load_timing_cache(stale, b"cache:10.3.0:convs") == \
        trt_compat.CACHE_REJECTED
    # never ignore_mismatch=True: the rejected cache is replaced by an empty one
    assert stale.calls == [("create", b"cache:10.3.0:convs"),
                           ("set", b"cache:10.3.0:convs", False),
                           ("create", b""), ("set", b"", False)]
    assert stale.attached.data == b""
    assert "was rejected" in caplog.text and "fresh cache" in caplog.text
    _, broken = config_of("8")                # not a timing cache at all: create raises
    assert trt_compat.load_timing_cache(broken, b"garbage") == trt_compat.CACHE_REJECTED
    assert broken.attached.data == b""
    _, nothing = config_of("8")
    nothing.set_timing_cache = lambda cache, ignore_mismatch: False
    assert trt_compat.load_timing_cache(nothing, b"") == trt_compat.CACHE_UNSUPPORTED


def test_parser_errors_name_the_node():
    trt = standin.make_tensorrt("10", parse_errors=[
        standin.ParserError8(41, "Assertion failed: mode"),
        standin.ParserError10(41, "Assertion failed: mode", "up3", "Resize")])
    parser = trt.OnnxParser(None, None)
    assert not parser.parse(b"onnx")
    assert trt_compat.parser_errors(parser) == [
        "node 41: Assertion failed: mode", "node 41 'up3' (Resize): Assertion failed: mode"]
