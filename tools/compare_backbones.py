"""Compare Unet backbones and input sizes for the Jetson Nano: FLOPs, parameters, latency.

    python3 tools/compare_backbones.py [--models mobilenetv2:256x256 efficientnetb4:384x384]
                                       [--runs 10] [--skip-onnx] [--json PATH]

For each ``backbone:HxW`` it builds ``sm.Unet`` (encoder_weights=None: weights do not change
the cost) through train.model.build_model, counts MACs with train/flops.py, times Keras and
ONNX Runtime FP32 at batch 1 on this CPU (the ONNX comes from convert/export_onnx.py's own
SavedModel -> tf2onnx path, opset 13, so it is the graph nanoseg ships), and ESTIMATES the
Jetson Nano FP16 latency from FLOPs: ``FLOPs / 472e9`` is the lower bound at the GPU's peak;
real engines reach roughly 25-50 % of peak, which gives the range. The estimate is not a
measurement, and the table says so. It prints a Markdown table (docs/benchmarks.md's
backbone table) with the machine, the date and the load average beside the numbers: on a shared CPU the
timings move with the load.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time

import numpy as np

from nanoseg import cli
from nanoseg.timing import latency_stats, time_calls
from nanoseg.contract import Contract
from nanoseg.files import write_text_atomic
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError
from train import keras_env

LOG = logging.getLogger(__name__)

DEFAULT_MODELS = ("mobilenetv2:256x256", "efficientnetb0:256x256", "resnet18:256x256",
                  "mobilenetv2:384x384", "efficientnetb4:384x384")
NANO_FP16_PEAK_FLOPS = 472e9     # Jetson Nano GPU: 128 CUDA cores x 921.6 MHz x 2 x 2 (FP16)
REALISTIC_EFFICIENCY = (0.50, 0.25)   # share of peak a real TensorRT engine reaches
MODEL_SPEC = re.compile(r"^([a-z0-9]+):(\d+)x(\d+)$")


# -- what to compare -----------------------------------------------------------------------
def parse_model_spec(text):
    """'mobilenetv2:256x256' -> ('mobilenetv2', 256, 256), or a one-line error with the fix."""
    match = MODEL_SPEC.match(str(text).strip().lower())
    if not match:
        raise NanosegError("--models entry {!r} must be BACKBONE:HxW, e.g. "
                           "mobilenetv2:256x256".format(text))
    from train.model import check_backbone, check_size
    backbone, height, width = match.group(1), int(match.group(2)), int(match.group(3))
    check_backbone(backbone)
    check_size((height, width))
    return backbone, height, width


def benchmark_contract(height, width, classes):
    """A contract for ``classes`` output channels (1 = sigmoid, N+1 = softmax), scale norm.

    Normalization and class names do not change the network's cost; only the size and the
    number of output channels do.
    """
    names = ["class{}".format(i) for i in range(max(1, classes - 1))]
    return Contract.create(height, width, names, "sigmoid" if classes == 1 else "softmax",
                           Normalization.named("scale"))


# -- the measurements ----------------------------------------------------------------------
def nano_estimate(gflops):
    """Jetson Nano FP16 ms per frame from FLOPs: the peak-rate lower bound and a real range.

    Convolutions in a TensorRT engine are limited by memory and launch overheads as well as
    arithmetic, so the peak figure is the best case, never a prediction.
    """
    lower, best, worst = _nano_ms(gflops)
    return {"lower_bound_ms": round(lower, 2), "range_ms": [round(best, 1), round(worst, 1)],
            "range_fps": [round(1000.0 / worst, 1), round(1000.0 / best, 1)]}


def _nano_ms(gflops):
    """(lower bound, best, worst) Nano FP16 ms per frame, unrounded."""
    lower = gflops * 1e9 / NANO_FP16_PEAK_FLOPS * 1000.0
    best, worst = (lower / share for share in REALISTIC_EFFICIENCY)
    return lower, best, worst


def _whole(value):
    """Round half up once, from the unrounded value (format's banker's rounding of an
    already rounded 12.5 would print 12 for 12.547)."""
    return int(value + 0.5)


def decoder_share(model):
    """Share of the MACs in the Unet decoder (segmentation_models names its layers decoder_*).

    It tells whether a lighter backbone can help at all: when the decoder dominates, only
    a smaller input (or fewer decoder filters) cuts the cost.
    """
    from train.flops import layer_macs
    total = decoder = 0
    for layer in model.layers:
        macs = layer_macs(layer)
        total += macs
        if layer.name.startswith("decoder_") or layer.name == "final_conv":
            decoder += macs
    return round(float(decoder) / total, 3) if total else None


def keras_latency(model, x, runs, warmup):
    """Batch-1 Keras latency, called the way nanoseg's Keras backend calls the model."""
    from train.model import predict_probabilities
    return latency_stats(time_calls(lambda: predict_probabilities(model, x), runs, warmup))


def export_onnx_file(model, contract, folder):
    """The model as nanoseg ships it (static batch-1 SavedModel -> tf2onnx opset 13)."""
    from convert import export_onnx
    saved = export_onnx.write_saved_model(model, contract, os.path.join(folder, "saved_model"))
    onnx_model = export_onnx.saved_model_to_onnx(saved, opset=export_onnx.DEFAULT_OPSET)
    export_onnx.rewrite_nearest_resizes(onnx_model)
    return export_onnx.save_onnx(onnx_model, os.path.join(folder, "model.onnx"))


def onnx_latency(path, x, runs, warmup):
    """Batch-1 ONNX Runtime FP32 latency on the CPU execution provider."""
    import onnxruntime as ort
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return latency_stats(time_calls(lambda: session.run(None, {name: x}), runs, warmup))


def measure(backbone, height, width, classes, runs, warmup, skip_onnx):
    """One table row: FLOPs, parameters, Keras / ORT latency, Nano estimate."""
    import tensorflow as tf
    from train import flops
    from train.model import build_model
    tf.keras.backend.clear_session()   # the previous model's graph would slow this one
    contract = benchmark_contract(height, width, classes)
    start = time.time()
    model = build_model(backbone, contract, encoder_weights=None)
    counted = flops.count(model)
    x = np.random.RandomState(0).uniform(0, 1, (1, height, width, 3)).astype(np.float32)
    row = {"backbone": backbone, "height": height, "width": width,
           "gflops": counted["gflops"], "params_m": round(counted["params"] / 1e6, 2),
           "decoder_share": decoder_share(model),
           "keras": keras_latency(model, x, runs, warmup), "onnxruntime": None,
           "nano_fp16_estimate": nano_estimate(counted["gflops"])}
    if not skip_onnx:
        folder = tempfile.mkdtemp(prefix="nanoseg-compare-")
        try:
            path = export_onnx_file(model, contract, folder)
            row["onnx_mb"] = round(os.path.getsize(path) / 1e6, 1)
            row["onnxruntime"] = onnx_latency(path, x, runs, warmup)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    row["load_1min"] = load_average()   # the load while this row ran: timings track it
    LOG.info("%s %dx%d measured in %.0f s (load %s)", backbone, height, width,
             time.time() - start, row["load_1min"])
    return row


def machine_description():
    """Where and when the numbers were taken, with the load that skews them."""
    import onnxruntime
    import tensorflow as tf
    from convert.validate import machine_info
    info = machine_info()
    info.update({"cpu_model": _cpu_model(), "tensorflow": tf.__version__,
                 "onnxruntime": onnxruntime.__version__,
                 "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    return info


def _cpu_model():
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's guess."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def load_average():
    """1-minute load average, or None where the OS has none (Windows)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


# -- reporting -----------------------------------------------------------------------------
def _ms(stats):
    """A latency cell: the median in whole ms, or 'skipped' (--skip-onnx)."""
    return "skipped" if not stats else "{:.0f}".format(stats["median_ms"])


def format_markdown(report):
    """The backbone table: measured CPU columns, then the FLOPs-based Nano estimate."""
    machine = report["machine"]
    lines = [
        "| backbone | input | GFLOPs | decoder share | params (M) | Keras ms | ORT FP32 ms "
        "| Nano FP16 ms, lower bound | Nano FP16 ms at 50-25 % of peak (FPS) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["rows"]:
        lower, best, worst = _nano_ms(row["gflops"])
        lines.append("| {} | {}x{} | {:.2f} | {:.0f} % | {:.2f} | {} | {} | {:.1f} | "
                     "{}-{} ({}-{}) |".format(
                         row["backbone"], row["height"], row["width"], row["gflops"],
                         100.0 * row["decoder_share"], row["params_m"], _ms(row["keras"]),
                         _ms(row["onnxruntime"]), lower, _whole(best), _whole(worst),
                         _whole(1000.0 / best), _whole(1000.0 / worst)))
    lines += [
        "",
        "Keras (`model(x)`, as nanoseg's Keras backend calls it) / ORT (ONNX Runtime CPU): "
        "measured medians of {runs} batch-1 runs after {warmup} warm-up runs on "
        "{cpu} ({cores} cores), TensorFlow {tf}, onnxruntime {ort}, {date}; 1-min load "
        "average {before} at the start, {rows} after each row.".format(
            runs=report["runs"], warmup=report["warmup"], cpu=machine["cpu_model"],
            cores=machine["cpu_count"], tf=machine["tensorflow"], ort=machine["onnxruntime"],
            date=machine["date_utc"], before=report["load_before"],
            rows=", ".join(str(row.get("load_1min")) for row in report["rows"])),
        "",
        "Nano columns: ESTIMATES from FLOPs, not measurements: FLOPs / 472 GFLOP/s (FP16 peak) "
        "is the lower bound; the range assumes the engine reaches 50-25 % of peak.",
    ]
    return "\n".join(lines) + "\n"


def check_options(classes, runs, warmup):
    """Reject impossible numbers before minutes of model building."""
    if runs < 1 or warmup < 0:
        raise NanosegError("--runs must be >= 1 and --warmup >= 0, got {} and {}".format(
            runs, warmup))
    if classes < 1:
        raise NanosegError("--classes {} must be >= 1: 1 (sigmoid) or N+1 (softmax over "
                           "background and N classes)".format(classes))


def compare(specs, classes=1, runs=10, warmup=2, skip_onnx=False):
    """The whole report for parsed (backbone, H, W) specs."""
    check_options(classes, runs, warmup)
    load_before = load_average()
    rows = [measure(backbone, height, width, classes, runs, warmup, skip_onnx)
            for backbone, height, width in specs]
    return {"rows": rows, "runs": runs, "warmup": warmup, "classes": classes,
            "machine": machine_description(), "load_before": load_before,
            "nano_fp16_peak_flops": NANO_FP16_PEAK_FLOPS,
            "nano_note": "estimated from FLOPs, not measured on a Jetson Nano"}


def parse_args(argv=None):
    parser = cli.make_parser("Compare Unet backbones/input sizes for the Jetson Nano: FLOPs, "
                             "parameters, Keras and ONNX Runtime latency on this CPU, and a "
                             "FLOPs-based Nano FP16 estimate (Markdown table).")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                        metavar="BACKBONE:HxW", help="backbones and input sizes to compare")
    parser.add_argument("--runs", type=int, default=10, help="timed batch-1 runs per model")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed runs first (graph tracing, memory arenas)")
    parser.add_argument("--classes", type=int, default=1,
                        help="output channels (1 = sigmoid, N+1 = softmax)")
    parser.add_argument("--skip-onnx", action="store_true",
                        help="no ONNX export / ONNX Runtime timing (faster)")
    parser.add_argument("--json", help="also write the report as JSON here")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    keras_env.prepare()
    check_options(args.classes, args.runs, args.warmup)
    specs = [parse_model_spec(text) for text in args.models]
    with contextlib.redirect_stdout(sys.stderr):  # its import banner would break the table
        keras_env.import_segmentation_models()
    report = compare(specs, args.classes, args.runs, args.warmup, args.skip_onnx)
    if args.json:
        write_text_atomic(args.json, json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(format_markdown(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
