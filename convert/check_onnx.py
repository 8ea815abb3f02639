"""Check that an ONNX model is one TensorRT 8.0/8.2's ONNX parser (JetPack 4.6.x) will take.

Runs anywhere the ``onnx`` package does (no TensorRT needed), so a model is rejected on the
desktop, with the node named, instead of on the Jetson after a copy and a failed build.
Rules: opset <= 13, static shapes and batch 1 on inputs/outputs, float32 I/O, every op in
convert/trt_ops.py's table (no ArgMax), Resize attributes the parser accepts, parameters that
must be initializers are initializers.

    python3 convert/check_onnx.py BUNDLE/model.onnx
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import os

from convert import trt_ops
from nanoseg import cli
from nanoseg.errors import NanosegError

FIX_EXPORT = "re-export with convert/export_onnx.py"


def folder_message(path):
    """What to pass instead of the folder ``path`` (a bundle's model.onnx when it has one)."""
    found = sorted(name for name in os.listdir(path) if name.endswith(".onnx"))
    if "model.onnx" in found:
        found.remove("model.onnx")
        found.insert(0, "model.onnx")
    if not found:
        return "{} is a folder with no .onnx file: pass an ONNX file (make one with " \
               "convert/export_onnx.py --bundle BUNDLE)".format(path)
    return "{} is a folder: pass the ONNX file, e.g. {}".format(
        path, " or ".join(os.path.join(path, name) for name in found[:2]))


def load_onnx(path):
    """Read an ONNX file, with a one-line error for a missing or damaged file."""
    import onnx
    if os.path.isdir(path):
        raise NanosegError(folder_message(path))
    if not os.path.isfile(path):
        raise NanosegError("ONNX file not found: {} (make it with convert/export_onnx.py "
                           "--bundle BUNDLE)".format(path))
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf DecodeError, truncated file, ...
        raise NanosegError("{} is not a readable ONNX model ({}): re-export it with "
                           "convert/export_onnx.py".format(path, str(exc).splitlines()[0]))


def default_opset(model):
    """The version of the default ("" / ai.onnx) operator set the model imports."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return None


def _node_label(node, index):
    return "node {} '{}' ({})".format(index, node.name or "?", node.op_type)


def check_opset(model):
    """Opset above 13 has ops/attributes TensorRT 8.0/8.2 cannot parse."""
    opset = default_opset(model)
    if opset is None:
        return ["the model imports no default ONNX opset: {}".format(FIX_EXPORT)]
    if opset > trt_ops.MAX_OPSET:
        return ["opset {} is above {} (TensorRT 8.0/8.2 parse opsets up to {}): {} "
                "--opset {}".format(opset, trt_ops.MAX_OPSET, trt_ops.MAX_OPSET, FIX_EXPORT,
                                    trt_ops.MAX_OPSET)]
    return []


def _dims(value_info):
    """Shape of a graph input/output as a list of int (static) or str/None (dynamic)."""
    shape = value_info.type.tensor_type.shape
    if not value_info.type.tensor_type.HasField("shape"):
        return None
    dims = []
    for dim in shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or "?")
    return dims


def check_io(model):
    """Static shapes with batch 1 and float32 on every graph input and output."""
    import onnx
    problems = []
    initializers = {init.name for init in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in initializers]
    for kind, values in (("input", inputs), ("output", model.graph.output)):
        for vi in values:
            dims = _dims(vi)
            elem = vi.type.tensor_type.elem_type
            if elem != onnx.TensorProto.FLOAT:
                problems.append("{} '{}' is {}, not float32: the runtime feeds and reads "
                                "float32 ({} with keep_io_types for FP16)".format(
                                    kind, vi.name, onnx.TensorProto.DataType.Name(elem),
                                    FIX_EXPORT))
            if dims is None or any(not isinstance(d, int) for d in dims):
                problems.append("{} '{}' has dynamic shape {}: the engine is built for one "
                                "static shape; {} (static batch 1, contract HxW)".format(
                                    kind, vi.name, dims, FIX_EXPORT))
            elif dims and dims[0] != 1:
                problems.append("{} '{}' has batch {} (shape {}), expected 1: {}".format(
                    kind, vi.name, dims[0], dims, FIX_EXPORT))
    return problems


def _constant_names(model):
    names = {init.name for init in model.graph.initializer}
    names.update(out for node in model.graph.node if node.op_type == "Constant"
                 for out in node.output)
    return names


def _attr(node, name, default=None):
    import onnx
    for attribute in node.attribute:
        if attribute.name == name:
            value = onnx.helper.get_attribute_value(attribute)
            return value.decode() if isinstance(value, bytes) else value
    return default


def check_resize(node, label):
    """The Resize attribute combinations TensorRT 8.0 (and so 8.2) accept."""
    get = lambda key: _attr(node, key, trt_ops.RESIZE_DEFAULTS[key])  # noqa: E731
    problems = []
    ctm, mode, nearest = get("coordinate_transformation_mode"), get("mode"), get("nearest_mode")
    if mode not in trt_ops.RESIZE_MODES:
        problems.append("{}: mode={} but TensorRT 8.0/8.2 resize only {}: use nearest or "
                        "bilinear upsampling in the model".format(
                            label, mode, "/".join(trt_ops.RESIZE_MODES)))
    if ctm not in trt_ops.RESIZE_COORDINATE_MODES:
        fix = ("convert/export_onnx.py rewrites nearest resizes with integer scales to "
               "asymmetric+floor; re-export" if mode == "nearest" else
               "use UpSampling2D(interpolation='nearest') in the model")
        problems.append("{}: coordinate_transformation_mode={} is not accepted by TensorRT "
                        "8.0's parser (asymmetric only): {}".format(label, ctm, fix))
    if mode == "nearest" and nearest not in trt_ops.RESIZE_NEAREST_MODES:
        problems.append("{}: nearest_mode={} is not accepted by TensorRT 8.0's parser (floor "
                        "only): {}".format(label, nearest, FIX_EXPORT))
    return problems


def check_pad(node, label, model):
    """TensorRT 8.0 pads with zeros on the last two dimensions only."""
    from onnx import numpy_helper
    problems = []
    mode = _attr(node, "mode", "constant")
    if mode != "constant":
        problems.append("{}: Pad mode={} (TensorRT 8.0 supports zero padding only): use "
                        "ZeroPadding2D".format(label, mode))
    inits = {init.name: init for init in model.graph.initializer}
    pads = inits.get(node.input[1]) if len(node.input) > 1 else None
    if pads is not None:
        pads = numpy_helper.to_array(pads).reshape(-1)
        rank = len(pads) // 2
        leading = list(pads[:rank - 2]) + list(pads[rank:2 * rank - 2])
        if any(int(p) != 0 for p in leading):
            problems.append("{}: pads {} touch dims other than the last two (TensorRT 8.0 "
                            "pads H and W only)".format(label, list(pads)))
    if len(node.input) > 2 and node.input[2]:
        value = inits.get(node.input[2])
        if value is None or float(numpy_helper.to_array(value).reshape(-1)[0]) != 0.0:
            problems.append("{}: Pad constant value must be a zero initializer for TensorRT "
                            "8.0".format(label))
    return problems


def check_nodes(model):
    """Every node: op in the table, not forbidden, constant inputs constant, Resize/Pad ok."""
    problems = []
    constants = _constant_names(model)
    for index, node in enumerate(model.graph.node):
        label = _node_label(node, index)
        if node.domain not in ("", "ai.onnx"):
            problems.append("{}: custom domain '{}' is not parsed by TensorRT without a "
                            "plugin: {}".format(label, node.domain, FIX_EXPORT))
            continue
        if node.op_type in trt_ops.FORBIDDEN_OPS:
            problems.append("{}: {}".format(label, trt_ops.FORBIDDEN_OPS[node.op_type]))
            continue
        if node.op_type not in trt_ops.SUPPORTED_OPS:
            problems.append("{}: {} is not in TensorRT 8.0/8.2's ONNX operator table "
                            "(convert/trt_ops.py): replace the layer that makes it".format(
                                label, node.op_type))
            continue
        for position in trt_ops.CONSTANT_INPUTS.get(node.op_type, ()):
            if position < len(node.input) and node.input[position] \
                    and node.input[position] not in constants:
                problems.append("{}: input {} ('{}') must be an initializer for TensorRT "
                                "8.0: export with a static shape".format(
                                    label, position, node.input[position]))
        if node.op_type == "Resize":
            problems.extend(check_resize(node, label))
        elif node.op_type == "Pad":
            problems.extend(check_pad(node, label, model))
    return problems


def check_model(model):
    """All problems that would stop TensorRT 8.0/8.2 (or the runtime) - empty when fine."""
    return check_opset(model) + check_io(model) + check_nodes(model)


def summarize(model):
    """One line: opset, node count, op histogram, I/O shapes (for logs and the report)."""
    counts = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    ops = ", ".join("{} {}".format(op, n) for op, n in sorted(counts.items()))
    initializers = {init.name for init in model.graph.initializer}
    io = ["{} {}".format(vi.name, _dims(vi)) for vi in model.graph.input
          if vi.name not in initializers] + \
        ["-> {} {}".format(vi.name, _dims(vi)) for vi in model.graph.output]
    return "opset {}, {} nodes ({}); {}".format(default_opset(model), len(model.graph.node),
                                                ops, " ".join(io))


def require_trt_compatible(model, what):
    """Raise a NanosegError naming the first problem (and how many) unless the model passes."""
    problems = check_model(model)
    if problems:
        raise NanosegError("{} would not parse on TensorRT 8.0/8.2: {}{}".format(
            what, problems[0], " (+{} more: run convert/check_onnx.py {})".format(
                len(problems) - 1, what) if len(problems) > 1 else ""))


def parse_args(argv=None):
    parser = cli.make_parser("Check an ONNX model against TensorRT 8.0/8.2's ONNX parser "
                             "(JetPack 4.6.x) without TensorRT.")
    parser.add_argument("onnx", help="the ONNX model to check (e.g. BUNDLE/model.onnx)")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    model = load_onnx(args.onnx)
    problems = check_model(model)
    print("{}: {}".format(args.onnx, summarize(model)))
    for problem in problems:
        print("  FAIL {}".format(problem))
    if problems:
        print("{} problem(s): TensorRT 8.0/8.2 would not build this model".format(
            len(problems)))
        return 1
    print("OK: opset, static float32 batch-1 I/O, every op and Resize attribute are accepted "
          "by TensorRT 8.0/8.2's ONNX parser")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main, parse_args))
