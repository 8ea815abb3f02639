"""One engine build, in this process: parse the ONNX, configure the builder, build.

What the build may do comes as a request dict (so a child process can be given it as JSON,
see convert/build_child.py): ``onnx``, ``fp16`` (asked for), ``workspace_mib``,
``timing_cache``, ``tactic_sources`` (canonical, edge.tensorrt.compat), ``fp32_layers``
(glob patterns on layer names, or ``["auto"]``) and ``warned_layers`` (what an earlier
build's log named, kept in FP32 by ``auto``). Every TensorRT call goes through
edge/tensorrt/compat.py. Python 3.6.
"""
import fnmatch
import os
import re

from edge.tensorrt import compat as trt_compat
from edge.tensorrt import engines
from nanoseg import memory
from nanoseg.errors import NanosegError

MIB = 1 << 20
AUTO = "auto"

CACHE_MESSAGES = {
    trt_compat.CACHE_LOADED: "timing cache: reusing {path} ({size} bytes)",
    trt_compat.CACHE_FRESH: "timing cache: none yet for this TensorRT + GPU, will write {path}",
    trt_compat.CACHE_REJECTED: "timing cache: {path} was rejected (stale: another TensorRT "
                               "build or GPU), timing from scratch and replacing it",
    trt_compat.CACHE_UNSUPPORTED: "timing cache: not supported by this TensorRT",
}


def parse_onnx(trt, builder, logger, onnx_path):
    """A network filled by the ONNX parser; a failure names the node and the fix."""
    network = trt_compat.create_network(builder, trt)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as handle:
        ok = parser.parse(handle.read())
    if not ok:
        errors = trt_compat.parser_errors(parser)
        raise NanosegError("TensorRT {} cannot parse {}: {}; run convert/check_onnx.py on it "
                           "on the desktop and re-export with convert/export_onnx.py "
                           "(opset 13)".format(trt.__version__, onnx_path,
                                               " | ".join(errors) or "no detail given"))
    return network, parser


def choose_precision(trt, builder, fp16, device="this GPU"):
    """"fp16" or "fp32": FP16 only where this TensorRT has the flag and the GPU is fast."""
    if not fp16:
        return "fp32"
    why = None
    if not trt_compat.has_fp16_flag(trt):
        why = ("TensorRT {} has no FP16 builder flag (its networks take their precision "
               "from the ONNX, here float32)".format(trt.__version__))
    elif not trt_compat.platform_has_fast_fp16(builder):
        why = "{} reports no fast FP16".format(device)
    if why:
        print("{}: using FP32".format(why), flush=True)
        return "fp32"
    return "fp16"


def mentioned(name, messages):
    """Whether a layer name appears, as a whole name, in any of the messages."""
    pattern = re.compile(r"(?<![\w.]){}(?![\w])".format(re.escape(name)))
    return any(pattern.search(message) for message in messages)


def select_fp32_layers(layers, patterns, warned, trt):
    """The layers to keep in FP32: ``auto`` = the output head + every warned-about layer;
    otherwise each glob pattern must match at least one layer name."""
    chosen = []
    for pattern in patterns:
        if pattern == AUTO:
            found = trt_compat.output_head(layers, trt) + [
                layer for layer in layers if layer.name in warned]
        else:
            found = [layer for layer in layers if fnmatch.fnmatchcase(layer.name, pattern)]
            if not found:
                raise NanosegError(
                    "--fp32-layers {} matches no layer of the network (its layers are named "
                    "after the ONNX nodes, e.g. {}): change the pattern".format(
                        pattern, ", ".join(layer.name for layer in layers[-6:])))
        chosen += [layer for layer in found if layer not in chosen]
    return [layer for layer in layers if layer in chosen]  # network order


def build(trt, request, tracker=None):
    """Parse + build; -> (plan bytes, result dict). Updates the timing cache file.

    The result: ``precision`` built, ``fp32_layers`` kept in FP32, ``warned_layers`` (layer
    names in the TensorRT log's warnings) and ``peak_rss_mib``.
    """
    warnings = []

    def record(severity, message):
        if severity in ("WARNING", "ERROR", "INTERNAL_ERROR"):
            warnings.append(message)

    logger = trt_compat.recording_logger(trt, record)
    builder = trt.Builder(logger)
    precision = choose_precision(trt, builder, request["fp16"],
                                 request.get("device") or "this GPU")
    network, _parser = parse_onnx(trt, builder, logger, request["onnx"])
    config = builder.create_builder_config()
    trt_compat.set_workspace(config, request["workspace_mib"] * MIB, trt)
    trt_compat.set_precision(config, precision == "fp16", trt)
    trt_compat.set_tactic_sources(config, request.get("tactic_sources", ""), trt)
    layers = trt_compat.network_layers(network)
    fp32_names = []
    patterns = request.get("fp32_layers") or []
    if patterns and precision == "fp16":
        chosen = select_fp32_layers(layers, patterns, set(request.get("warned_layers", ())),
                                    trt)
        fp32_names = trt_compat.keep_layers_fp32(chosen, config, trt)
        print("keeping {} of {} layers in FP32: {}".format(
            len(fp32_names), len(layers), ", ".join(fp32_names)), flush=True)
    if tracker is not None and trt_compat.attach_progress_monitor(config, trt, tracker):
        print("TensorRT reports its build phases below", flush=True)
    cache_path = request["timing_cache"]
    cached = b""
    if os.path.isfile(cache_path):
        with open(cache_path, "rb") as handle:
            cached = handle.read()
    status = trt_compat.load_timing_cache(config, cached)
    print(CACHE_MESSAGES[status].format(path=cache_path, size=len(cached)), flush=True)
    plan = trt_compat.build_serialized(builder, network, config)
    if plan is None:
        workspace_mib = request["workspace_mib"]
        raise NanosegError(
            "TensorRT could not build {} (its log above names the layer): on a Nano this is "
            "usually memory running out (CPU and GPU share 4 GB; --workspace {} MiB) - try "
            "a smaller --workspace {}, close other programs (the GUI: sudo systemctl "
            "isolate multi-user.target), or add swap".format(
                request["onnx"], workspace_mib, max(workspace_mib // 2, 1)))
    cache = trt_compat.serialize_timing_cache(config)
    if cache:
        engines.write_bytes_atomic(cache_path, cache)
    result = {"precision": precision, "fp32_layers": fp32_names,
              "warned_layers": [layer.name for layer in layers
                                if mentioned(layer.name, warnings)],
              "peak_rss_mib": memory.process_memory()[1]}
    return bytes(memoryview(plan)), result
