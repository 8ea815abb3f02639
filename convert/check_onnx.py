"""Check that an ONNX model is one TensorRT 8.0/8.2's ONNX parser (JetPack 4.6.x) will take.

Runs anywhere the ``onnx`` package does (no TensorRT needed), so a model is rejected on the
desktop, with the node named, instead of on the Jetson after a copy and a failed build.
Rules: opset <= 13, static shapes and batch 1 on inputs/outputs, float32 I/O, every op in
convert/trt_ops.py's table (no ArgMax), the Resize and Pad forms the parser imports, parameters
that must be initializers are initializers.

    python3 convert/check_onnx.py BUNDLE/model.onnx
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import os

import numpy as np

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


def _constant_array(model, name):
    """The value of an initializer or Constant output as a flat numpy array, else None."""
    import onnx
    from onnx import numpy_helper
    for init in model.graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init).reshape(-1)
    for node in model.graph.node:
        if node.op_type == "Constant" and name in node.output and node.attribute:
            value = onnx.helper.get_attribute_value(node.attribute[0])
            if isinstance(value, onnx.TensorProto):
                value = numpy_helper.to_array(value)
            return np.asarray(value).reshape(-1)
    return None


def _not_constant(label, position, name):
    return ("{}: input {} ('{}') must be an initializer for TensorRT 8.0: export with a "
            "static shape".format(label, position, name))


def check_resize(node, label, model, opset):
    """The Resize attributes and inputs both TensorRT 8.0's and 8.2's importers accept."""
    get = lambda key: _attr(node, key, trt_ops.RESIZE_DEFAULTS[key])  # noqa: E731
    problems = []
    ctm, mode, nearest = get("coordinate_transformation_mode"), get("mode"), get("nearest_mode")
    if mode not in trt_ops.RESIZE_MODES:
        problems.append("{}: mode={} but TensorRT 8.0/8.2 resize only {}: use nearest or "
                        "bilinear upsampling in the model".format(
                            label, mode, "/".join(trt_ops.RESIZE_MODES)))
    if opset >= 11:  # Resize-10 has neither attribute
        if ctm not in trt_ops.RESIZE_COORDINATE_MODES:
            problems.append("{}: coordinate_transformation_mode={} is not accepted by "
                            "TensorRT 8.0/8.2 ({} only): {}".format(
                                label, ctm, ", ".join(trt_ops.RESIZE_COORDINATE_MODES),
                                FIX_EXPORT))
        elif ctm == "tf_half_pixel_for_nn" and \
                nearest != trt_ops.RESIZE_TF_HALF_PIXEL_NEAREST_MODE:
            problems.append("{}: coordinate_transformation_mode=tf_half_pixel_for_nn with "
                            "nearest_mode={} is not accepted by TensorRT 8.0/8.2 ({} only): "
                            "convert/export_onnx.py rewrites nearest resizes with integer "
                            "scales to asymmetric+floor; re-export".format(
                                label, nearest, trt_ops.RESIZE_TF_HALF_PIXEL_NEAREST_MODE))
        if mode == "nearest" and nearest not in trt_ops.RESIZE_NEAREST_MODES:
            problems.append("{}: nearest_mode={} is not accepted by TensorRT 8.0/8.2 ({} "
                            "only): {}".format(label, nearest,
                                               ", ".join(trt_ops.RESIZE_NEAREST_MODES),
                                               FIX_EXPORT))
        if len(node.input) > 3 and node.input[3]:
            return problems  # sizes: imported as a shape tensor, no scales needed
    position = 2 if opset >= 11 else 1
    name = node.input[position] if position < len(node.input) else ""
    scales = _constant_array(model, name) if name else None
    if scales is None:
        problems.append(_not_constant(label, position, name or "scales"))
    elif mode == "linear" and any(float(s) != 1.0 for s in
                                  scales[:max(0, len(scales) - trt_ops.RESIZE_LINEAR_AXES)]):
        problems.append("{}: linear resize with scales {} (TensorRT 8.0/8.2 resize linearly "
                        "only the innermost {} axes): resize H and W only".format(
                            label, [float(s) for s in scales], trt_ops.RESIZE_LINEAR_AXES))
    return problems


def check_pad(node, label, model, opset):
    """TensorRT 8.0 pads with zeros on at most two axes (8.2 also refuses negative pads)."""
    problems = []
    mode = _attr(node, "mode", "constant")
    if opset >= 11:  # pads and value are inputs; CONSTANT_INPUTS reports non-constant ones
        pads = _constant_array(model, node.input[1]) if len(node.input) > 1 else None
        value = _constant_array(model, node.input[2]) \
            if len(node.input) > 2 and node.input[2] else np.zeros(1)
    else:
        pads, value = np.asarray(_attr(node, "pads", [])), np.asarray([_attr(node, "value", 0.0)])
    if pads is None or value is None:
        return problems
    pads = [int(p) for p in pads]
    if not any(pads):
        return problems  # the importer makes a no-op Pad an identity, whatever its mode
    if mode != "constant":
        problems.append("{}: Pad mode={} (TensorRT 8.0 supports zero padding only): use "
                        "ZeroPadding2D".format(label, mode))
    elif value.size and float(value[0]) != 0.0:
        problems.append("{}: Pad constant value {} (TensorRT 8.0 pads with zeros only): use "
                        "ZeroPadding2D".format(label, float(value[0])))
    if any(p < 0 for p in pads):
        problems.append("{}: pads {} crop (TensorRT 8.2 refuses negative pads): crop with a "
                        "Slice (Cropping2D)".format(label, pads))
    rank = len(pads) // 2
    axes = sum(1 for axis in range(rank) if pads[axis] or pads[rank + axis])
    if axes > trt_ops.PAD_MAX_AXES:
        problems.append("{}: pads {} pad {} axes (TensorRT 8.0 pads at most {}): pad in two "
                        "steps or re-export".format(label, pads, axes, trt_ops.PAD_MAX_AXES))
    return problems


def check_nodes(model):
    """Every node: op in the table, not forbidden, constant inputs constant, Resize/Pad ok."""
    problems = []
    constants = _constant_names(model)
    opset = default_opset(model) or trt_ops.MAX_OPSET
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
                problems.append(_not_constant(label, position, node.input[position]))
        if node.op_type == "Resize":
            problems.extend(check_resize(node, label, model, opset))
        elif node.op_type == "Pad":
            problems.extend(check_pad(node, label, model, opset))
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
