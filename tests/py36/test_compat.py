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


# -- what the builder is allowed: tactic sources, layer precisions, progress, the log ---------
def test_tactic_sources_are_parsed_into_one_canonical_form_before_tensorrt():
    assert trt_compat.parse_tactic_sources("-cublasLt, -CUBLAS") == "-cublas,-cublaslt"
    assert trt_compat.parse_tactic_sources("cudnn,-jit_convolutions") == \
        "+cudnn,-jit-convolutions"
    assert trt_compat.parse_tactic_sources("") == ""
    with pytest.raises(NanosegError, match="unknown source 'cublass' \\(known: cublas, "
                                           "cublaslt, cudnn"):
        trt_compat.parse_tactic_sources("-cublass")


def test_tactic_sources_change_the_default_mask_where_the_version_has_them():
    for api in ("8.0", "8", "8.6", "10"):
        trt, config = config_of(api)
        default = config.get_tactic_sources()
        trt_compat.set_tactic_sources(config, "-cublas,-cublaslt", trt)
        assert trt.tactic_masks == [default & ~0b11] == [0b100], api
    trt, config = config_of("8")
    with pytest.raises(NanosegError, match="TensorRT 8.2.1.8 has no tactic source "
                                           "'jit-convolutions' \\(it has: cublas, cublaslt, "
                                           "cudnn\\)"):
        trt_compat.set_tactic_sources(config, "+jit-convolutions", trt)
    trt, config = config_of("11")
    with pytest.raises(NanosegError, match="11.0.0 has no tactic source 'cublas' \\(it has: "
                                           "edge-mask-convolutions, jit-convolutions\\)"):
        trt_compat.set_tactic_sources(config, "-cublas", trt)
    trt_compat.set_tactic_sources(config, "", trt)   # nothing asked: nothing called
    assert trt.tactic_masks == []


def test_layer_precision_is_obeyed_through_the_flag_each_version_has():
    flags = {api: trt_compat.precision_constraint_flag(standin.make_tensorrt(api))
             for api in ("8.0", "8", "8.6", "10", "11")}
    assert flags == {"8.0": "STRICT_TYPES", "8": "OBEY_PRECISION_CONSTRAINTS",
                     "8.6": "OBEY_PRECISION_CONSTRAINTS", "10": "OBEY_PRECISION_CONSTRAINTS",
                     "11": None}
    for api in ("8.0", "10"):
        trt, config = config_of(api)
        layers = trt_compat.network_layers(trt.Builder(None).create_network(0))
        head = trt_compat.output_head(layers, trt)
        assert [layer.name for layer in head] == ["final_conv", "sigmoid", "to_nhwc"]
        assert trt_compat.keep_layers_fp32(head[:2], config, trt) == ["final_conv", "sigmoid"]
        assert trt.layer_calls == [("precision", "final_conv", "FLOAT"),
                                   ("output_type", "final_conv", 0, "FLOAT"),
                                   ("precision", "sigmoid", "FLOAT"),
                                   ("output_type", "sigmoid", 0, "FLOAT")]
        assert flags[api] in config.flags
    trt, config = config_of("10")
    layers = trt_compat.network_layers(trt.Builder(None).create_network(0))
    layers[-1]._outputs = [standin.Tensor(trt.DataType.INT32)]   # shape arithmetic
    assert trt_compat.keep_layers_fp32(layers[-2:], config, trt) == ["sigmoid"]
    assert [call[1] for call in trt.layer_calls] == ["sigmoid", "sigmoid"]
    assert [layer.name for layer in trt_compat.output_head(layers[:3], trt)] == ["conv1",
                                                                                "relu1", "up1"]
    assert [layer.name for layer in trt_compat.output_head(layers[1:3], trt)] == ["up1"]
    trt, config = config_of("11")
    layers = trt_compat.network_layers(trt.Builder(None).create_network(0))
    with pytest.raises(NanosegError, match="11.0.0 cannot pin layer precisions.*--fp32"):
        trt_compat.keep_layers_fp32(layers[-1:], config, trt)


class Tracker(object):
    def __init__(self):
        self.events = []

    def phase_start(self, name, parent, steps):
        self.events.append(("start", name, parent, steps))

    def step_complete(self, name, step):
        self.events.append(("step", name, step))

    def phase_finish(self, name):
        self.events.append(("finish", name))


def test_the_progress_monitor_is_attached_only_where_tensorrt_has_one():
    for api in ("8.0", "8", "8.6"):   # IProgressMonitor arrived in 9.1
        trt, config = config_of(api)
        assert not trt_compat.attach_progress_monitor(config, trt, Tracker())
    trt, config = config_of("10")
    tracker = Tracker()
    assert trt_compat.attach_progress_monitor(config, trt, tracker)
    assert config.progress_monitor.initialised  # IProgressMonitor.__init__ was called
    builder = trt.Builder(trt.Logger())
    builder.build_serialized_network(builder.create_network(0), config)
    assert tracker.events[:3] == [("start", "Building engine", None, 2),
                                  ("start", "Tactic timing", "Building engine", 3),
                                  ("step", "Tactic timing", 0)]
    assert tracker.events[-1] == ("finish", "Building engine")


def test_the_recording_logger_keeps_every_message_and_prints_warnings(capsys):
    trt = standin.make_tensorrt("8", build_warnings=["Weights of final_conv are subnormal"])
    seen = []
    logger = trt_compat.recording_logger(trt, lambda level, msg: seen.append((level, msg)))
    assert isinstance(logger, trt.ILogger)
    logger.log(trt.ILogger.Severity.INFO, "parsed 7 layers")
    builder = trt.Builder(logger)
    builder.build_serialized_network(builder.create_network(0),
                                     builder.create_builder_config())
    assert seen == [("INFO", "parsed 7 layers"),
                    ("WARNING", "Weights of final_conv are subnormal")]
    assert capsys.readouterr().out == \
        "[TensorRT] WARNING: Weights of final_conv are subnormal\n"
