"""Validate every format of a bundle against Keras: mIoU, agreement, latency, file size.

    python3 convert/validate.py --bundle B [--data D --layout L --split val]
        [--formats keras onnx onnx-fp16 tensorrt] [--tolerance 0.5] [--runs 20]
        [--json PATH] [--markdown PATH]

For each format that can run here (Keras ``model.h5`` when TensorFlow imports, ONNX FP32
``model.onnx`` and FP16 ``model_fp16.onnx`` when onnxruntime imports, a TensorRT engine from
``engines/`` when tensorrt imports and one matches ``model.onnx``) it scores the split with
nanoseg.evaluation's :func:`evaluate` (so the numbers mean what ``evaluation.json`` means),
measures per-pixel label agreement with the reference, max |dp| on ``golden.npz``, batch-1
latency after a warm-up, and the artifact's size. Formats that cannot run are listed with
the reason. The result is a Markdown table and a JSON report (default: validation.md /
validation.json in the bundle); exit status 2 when a format's mIoU is more than
``--tolerance`` points (default 0.5 = 0.005 mIoU) below the reference.

The reference is Keras run here when TensorFlow imports (agreement over the whole split).
On the Jetson (no TensorFlow) it is what Keras produced on the desktop: the mIoU stored in
``evaluation.json`` and the probabilities in ``golden.npz`` (agreement on its inputs).

Python 3.6; TensorFlow, onnxruntime and tensorrt are imported only when a format needs them.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import importlib
import json
import logging
import os
import platform
import sys
import time

import numpy as np

from nanoseg import cli, golden
from nanoseg.bundle import EVALUATION_JSON, GOLDEN_NPZ, MODEL_H5, ONNX, ONNX_FP16, Bundle
from nanoseg.files import write_text_atomic
from nanoseg.preprocess import probabilities_to_labels
from nanoseg.errors import NanosegError
from nanoseg.evaluation import (add_dataset_args, dataset_for, evaluate,
                                iterate_validation)

LOG = logging.getLogger(__name__)

FORMATS = ("keras", "onnx", "onnx-fp16", "tensorrt")
FORMAT_FILES = {"keras": MODEL_H5, "onnx": ONNX, "onnx-fp16": ONNX_FP16}
REFERENCES = ("auto", "keras", "golden")
VALIDATION_JSON = "validation.json"
VALIDATION_MD = "validation.md"
DEFAULT_TOLERANCE = 0.5   # mIoU points (0.5 points = 0.005 mIoU)


class Unavailable(Exception):
    """A format that cannot run on this machine (missing file or library): listed, not run."""


# -- opening formats ----------------------------------------------------------------------
def _import_or_reason(module, why):
    """Import ``module`` or raise Unavailable with a reason a user can act on."""
    try:
        return __import__(module)
    except Exception as exc:  # ImportError, or a broken CUDA/TF install raising otherwise
        raise Unavailable("{} does not import here ({}){}".format(
            module, (str(exc).splitlines() or [type(exc).__name__])[0], why))


def _keras_environment():
    """Prepare TensorFlow's environment; Unavailable where train/ is not deployed (Jetson)."""
    _import_or_reason("train.keras_env", "; train/ stays on the desktop, where Keras runs")
    importlib.import_module("train.keras_env").prepare()


def _require_file(bundle, name, hint):
    if not bundle.has(name):
        raise Unavailable("{} is not in the bundle: {}".format(name, hint))
    return bundle.path(name)


def open_format(bundle, name, device="cpu", engine_path=None):
    """(backend, artifact path) for one format; Unavailable when it cannot run here.

    A NanosegError (the file exists and its library imports, but loading fails) is left to
    the caller: that is a broken artifact, not a missing one.
    """
    from edge import backends
    if name == "keras":
        path = _require_file(bundle, MODEL_H5, "train/train.py writes it")
        _keras_environment()
        _import_or_reason("tensorflow", "; on the Jetson the golden outputs are the reference")
        return backends.load_backend(bundle, "keras"), path
    if name in ("onnx", "onnx-fp16"):
        path = _require_file(bundle, FORMAT_FILES[name],
                             "run convert/export_onnx.py --bundle " + bundle.root)
        _import_or_reason("onnxruntime", "; pip install onnxruntime")
        return backends.OnnxRuntimeBackend(bundle, device, FORMAT_FILES[name]), path
    if name == "tensorrt":
        return _open_engine(bundle, engine_path, backends)
    raise NanosegError("unknown format {!r}: use one of {}".format(name, ", ".join(FORMATS)))


def _open_engine(bundle, engine_path, backends):
    """The TensorRT backend for ``engine_path`` or the newest engine built from model.onnx."""
    trt = _import_or_reason("tensorrt", "; JetPack provides it on the Jetson")
    _import_or_reason("pycuda.driver", "; JetPack + jetson/setup.sh provide it")
    if engine_path is None:
        from edge.tensorrt import engines
        engine_path = engines.find_engine(bundle, tensorrt_version=trt.__version__)
        if engine_path is None:
            raise Unavailable("no engine in {} was built from this model.onnx with TensorRT "
                              "{}: run convert/build_engine.py --bundle {}".format(
                                  bundle.engines_dir, trt.__version__, bundle.root))
    return backends.TensorRTBackend(bundle, engine_path), engine_path


def keras_reason(bundle):
    """None when Keras can be the reference here, else why not (without loading the model)."""
    try:
        _require_file(bundle, MODEL_H5, "train/train.py writes it")
        _keras_environment()
        _import_or_reason("tensorflow", "")
    except Unavailable as exc:
        return str(exc)
    return None


# -- measuring one format -----------------------------------------------------------------
def latency_ms(backend, x, runs, warmup):
    """Median and p90 of ``runs`` batch-1 ``infer`` calls after ``warmup`` untimed ones.

    The warm-up absorbs one-off costs (graph tracing, CUDA context, memory arenas) that a
    running camera pays once and never again.
    """
    for _ in range(warmup):
        backend.infer(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        backend.infer(x)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"median": float(np.median(times)), "p90": float(np.percentile(times, 90)),
            "runs": int(runs), "warmup": int(warmup)}


def score_split(backend, contract, dataset):
    """nanoseg.evaluation's report for ``backend`` on the split, plus the predicted labels.

    The labels are kept (uint8, model size) so agreement with the reference is measured on
    exactly the predictions that were scored.
    """
    labels = []

    def predict(batch):
        probs = np.stack([backend.infer(x) for x in batch])
        labels.extend(probabilities_to_labels(p, contract) for p in probs)
        return probs

    report = evaluate(predict, contract, iterate_validation(dataset, contract), batch_size=1)
    return report, labels


def label_agreement(reference_labels, labels):
    """Fraction of pixels, over all images, whose labels are equal."""
    if len(reference_labels) != len(labels):
        raise NanosegError("the reference scored {} images and this format {}: the split "
                           "changed during validation".format(len(reference_labels),
                                                              len(labels)))
    same = sum(int(np.count_nonzero(a == b)) for a, b in zip(reference_labels, labels))
    total = sum(int(a.size) for a in reference_labels)
    return float(same) / total


def golden_comparison(backend, golden_data, contract):
    """compare_probabilities on golden.npz (without the per-image list), or None."""
    if golden_data is None:
        return None
    probs = np.stack([backend.infer(x) for x in golden_data["inputs"]])
    metrics = golden.compare_probabilities(golden_data["probabilities"], probs, contract)
    metrics.pop("per_image_agreement", None)
    return metrics


def measure(backend, contract, dataset, golden_data, runs, warmup):
    """Everything the table shows for one runnable format (labels kept for agreement)."""
    report, labels = score_split(backend, contract, dataset)
    first_x = next(iterate_validation(dataset, contract))[0]
    row = {
        "backend": backend.describe(),
        "miou": report["miou"],
        "pixel_accuracy": report["pixel_accuracy"],
        "iou_per_class": report["iou_per_class"],
        "images": report["images"],
        "golden": golden_comparison(backend, golden_data, contract),
        "latency_ms": latency_ms(backend, first_x, runs, warmup),
    }
    return row, labels


# -- the reference --------------------------------------------------------------------------
def load_golden_for(bundle, contract):
    """golden.npz checked against the bundle's contract, or None when the bundle has none."""
    if not bundle.has(GOLDEN_NPZ):
        return None
    data = golden.load_golden(bundle.path(GOLDEN_NPZ))
    contract.check_compatible(data["contract"], "golden.npz")
    return data


def stored_keras_evaluation(bundle, split, images):
    """evaluation.json's Keras report, refused unless it scored the same split and images.

    The stored mIoU is the Jetson's only Keras number; comparing it with a score on other
    images would turn a data difference into a fake accuracy loss.
    """
    path = bundle.require(EVALUATION_JSON, "train/train.py writes it (or run "
                          "train/evaluate.py --bundle {} where TensorFlow is)".format(
                              bundle.root))
    try:
        with open(path, "r") as handle:
            stored = json.load(handle)
    except ValueError as exc:
        raise NanosegError("{} is not valid JSON ({}): rerun train/evaluate.py --bundle {} "
                           "where TensorFlow is".format(path, exc, bundle.root))
    if stored.get("miou") is None:
        raise NanosegError("{} has no Keras mIoU: rerun train/evaluate.py --bundle {} where "
                           "TensorFlow is".format(path, bundle.root))
    if stored.get("split", split) != split or stored.get("images", images) != images:
        raise NanosegError(
            "{} scored the {!r} split ({} images), this run the {!r} split ({} images): "
            "pass --split {} with the training data, or rerun train/evaluate.py --split {} "
            "where TensorFlow is".format(path, stored.get("split"), stored.get("images"),
                                         split, images, stored.get("split"), split))
    return stored


def resolve_reference(requested, reason):
    """'keras' or 'golden': the reference this run uses (auto: Keras whenever it can run).

    ``reason`` is why Keras cannot run here (None when it can).
    """
    if requested not in REFERENCES:
        raise NanosegError("--reference must be one of {}, got {!r}".format(
            ", ".join(REFERENCES), requested))
    if requested == "golden":
        return "golden"
    if reason is None:
        return "keras"
    if requested == "keras":
        raise NanosegError("--reference keras cannot run here: {}; use --reference golden "
                           "(the outputs Keras stored in the bundle)".format(reason))
    LOG.info("Keras cannot run here (%s): the reference is golden.npz + evaluation.json",
             reason)
    return "golden"


# -- the whole validation -----------------------------------------------------------------
def _new_row(name):
    return {"format": name, "status": "unavailable", "reason": None, "file": None,
            "size_bytes": None, "miou": None, "pixel_accuracy": None, "iou_per_class": None,
            "images": None, "delta_points": None, "agreement": None, "golden": None,
            "latency_ms": None, "backend": None}


def _set_file(row, path):
    row["file"] = os.path.basename(path)
    row["size_bytes"] = os.path.getsize(path) if os.path.isfile(path) else None


def run_format(bundle, name, contract, dataset, golden_data, options):
    """One row (and its labels, None unless it ran): unavailable, failed to load, or measured."""
    row = _new_row(name)
    try:
        backend, path = open_format(bundle, name, options["device"], options["engine"])
    except Unavailable as exc:
        row["reason"] = str(exc)
        LOG.info("%s: unavailable (%s)", name, exc)
        return row, None
    except NanosegError as exc:
        row.update(status="failed", reason=str(exc))
        LOG.error("%s: %s", name, exc)
        return row, None
    _set_file(row, path)
    LOG.info("%s: scoring %s (%d images) with %s", name, dataset.root, len(dataset),
             backend.describe())
    try:
        measured, labels = measure(backend, contract, dataset, golden_data,
                                   options["runs"], options["warmup"])
    except Exception as exc:  # a runtime's own error types: the format fails, not the tool
        LOG.debug("%s failed while running", name, exc_info=True)
        row.update(status="failed", reason="{} while running: {}".format(
            type(exc).__name__, (str(exc).splitlines() or [""])[0]))
        return row, None
    finally:
        backend.close()
    row.update(measured, status="ok")
    return row, labels


def _golden_reference_row(bundle, stored, reason):
    """The Keras row when Keras cannot run here: its stored mIoU, its golden outputs."""
    row = _new_row("keras (stored)")
    row.update(status="reference", miou=stored["miou"],
               pixel_accuracy=stored.get("pixel_accuracy"),
               iou_per_class=stored.get("iou_per_class"), images=stored.get("images"),
               backend="stored: {} + {}".format(EVALUATION_JSON, GOLDEN_NPZ),
               reason="not run here ({}); mIoU from {}".format(reason, EVALUATION_JSON),
               delta_points=0.0, agreement=1.0)
    if bundle.has(MODEL_H5):
        _set_file(row, bundle.path(MODEL_H5))
    return row


def gate(rows, reference_miou, tolerance, required):
    """Set each row's delta and status; return the failure messages (empty: all passed)."""
    failures = []
    for row in rows:
        if row["status"] == "reference":
            continue
        if row["status"] == "failed":
            failures.append("{}: {}".format(row["format"], row["reason"]))
        elif row["status"] == "unavailable" and row["format"] in required:
            failures.append("{} was requested with --formats but is unavailable: {}".format(
                row["format"], row["reason"]))
        elif row["status"] == "ok":
            if row["miou"] is None:
                row["status"] = "failed"
                failures.append("{}: mIoU undefined (no label occurs in prediction or "
                                "ground truth)".format(row["format"]))
                continue
            row["delta_points"] = (row["miou"] - reference_miou) * 100.0
            if row["delta_points"] < -tolerance:
                row["status"] = "below tolerance"
                failures.append(
                    "{} ({}): mIoU {:.4f} is {:.2f} points below the reference {:.4f} "
                    "(--tolerance {} points)".format(row["format"], row["file"], row["miou"],
                                                     -row["delta_points"], reference_miou,
                                                     tolerance))
    return failures


def make_reference_row(bundle, kind, keras_missing, contract, dataset, golden_data, options):
    """(the reference row, its labels over the split or None) for ``kind`` keras/golden."""
    if kind == "keras":
        row, labels = run_format(bundle, "keras", contract, dataset, golden_data, options)
        if row["status"] != "ok":
            raise NanosegError("the Keras reference failed: {}".format(row["reason"]))
        row.update(status="reference", delta_points=0.0, agreement=1.0)
    else:
        if golden_data is None:
            raise NanosegError("{} is missing from bundle {}: it is the reference when Keras "
                               "does not run; run convert/export_onnx.py --bundle {} on the "
                               "desktop".format(GOLDEN_NPZ, bundle.root, bundle.root))
        stored = stored_keras_evaluation(bundle, dataset.split, len(dataset))
        row, labels = _golden_reference_row(bundle, stored, keras_missing
                                            or "--reference golden"), None
    if row["miou"] is None:
        raise NanosegError("the reference mIoU is undefined on {} (no label occurs in "
                           "prediction or ground truth): validate on another --split".format(
                               dataset.root))
    return row, labels


def _check_options(tolerance, runs, warmup, formats):
    if tolerance < 0:
        raise NanosegError("--tolerance is in mIoU points and must be >= 0, got {}".format(
            tolerance))
    if runs < 1 or warmup < 0:
        raise NanosegError("--runs must be >= 1 and --warmup >= 0, got {} and {}".format(
            runs, warmup))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise NanosegError("unknown --formats {}: use {}".format(unknown, ", ".join(FORMATS)))


def validate_bundle(bundle_dir, data=None, layout=None, split="val", classes=None,
                    formats=None, tolerance=DEFAULT_TOLERANCE, runs=20, warmup=3,
                    device="cpu", reference="auto", engine_path=None):
    """The validation report (a JSON-ready dict); ``report["failures"]`` lists what failed.

    ``formats`` None means every format, where unavailable ones are only listed; formats
    named explicitly must run. Nothing is raised for a failed gate: the caller writes the
    report first, then decides (see :func:`require_passed`).
    """
    required = list(formats or [])
    formats = [f for f in FORMATS if f in (formats or FORMATS)]
    _check_options(tolerance, runs, warmup, required)
    bundle = Bundle(bundle_dir)
    contract = bundle.contract()
    dataset = dataset_for(contract, data, layout, split, classes, bundle_dir=bundle.root)
    golden_data = load_golden_for(bundle, contract)
    keras_missing = keras_reason(bundle)
    kind = resolve_reference(reference, keras_missing)
    options = {"device": device, "engine": engine_path, "runs": runs, "warmup": warmup}
    reference_row, reference_labels = make_reference_row(
        bundle, kind, keras_missing, contract, dataset, golden_data, options)
    rows = [reference_row]
    for name in formats:
        if name == "keras" and (kind == "keras" or keras_missing):
            continue  # the reference row already is Keras, or says why it cannot run
        row, labels = run_format(bundle, name, contract, dataset, golden_data, options)
        if labels is not None:
            row["agreement"] = label_agreement(reference_labels, labels) \
                if kind == "keras" else row["golden"]["mask_agreement"]
        rows.append(row)
    reference_miou = reference_row["miou"]
    failures = gate(rows, reference_miou, tolerance, required)
    return {
        "bundle": bundle.root, "dataset": dataset.root, "layout": dataset.layout,
        "split": split, "images": len(dataset), "contract": repr(contract),
        "reference": {"kind": kind, "miou": reference_miou,
                      "description": describe_reference(kind, golden_data, dataset, split)},
        "tolerance_points": float(tolerance), "formats": rows,
        "failures": failures, "passed": not failures, "machine": machine_info(),
    }


def describe_reference(kind, golden_data, dataset, split):
    """One sentence saying what the numbers are compared with (shown above the table)."""
    if kind == "keras":
        return ("Keras model.h5 run here on the {} split of {} ({} images); agreement = "
                "per-pixel label agreement with Keras over that split".format(
                    split, dataset.root, len(dataset)))
    return ("golden outputs: Keras mIoU stored in {} (TensorFlow not used here); agreement = "
            "label agreement with the Keras probabilities in {} ({} images)".format(
                EVALUATION_JSON, GOLDEN_NPZ, len(golden_data["inputs"])))


def machine_info():
    """Where the latencies were measured (they mean nothing without it)."""
    info = {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__}
    for module in ("onnxruntime", "tensorrt"):
        loaded = sys.modules.get(module)
        if loaded is not None:
            info[module] = getattr(loaded, "__version__", "?")
    return info


def require_passed(report):
    """Raise one NanosegError line naming every failed format (exit status 2 in the CLI)."""
    if report["failures"]:
        raise NanosegError("validation failed against the {} reference: {}".format(
            report["reference"]["kind"], "; ".join(report["failures"])))


# -- output ------------------------------------------------------------------------------
def _num(value, pattern="{:.4f}"):
    return "n/a" if value is None else pattern.format(value)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _status(row):
    if row["status"] in ("unavailable", "failed") or (row["status"] == "reference"
                                                      and row["reason"]):
        return "{}: {}".format(row["status"], row["reason"])
    return row["status"]


def format_markdown(report):
    """The report as Markdown: the formats table, then IoU per class per format."""
    tol = report["tolerance_points"]
    lines = [
        "## nanoseg validation: {}".format(report["bundle"]), "",
        "Reference: {}.".format(report["reference"]["description"]),
        "Data: {} split of {} ({}, {} images). A format fails when its mIoU is more than {} "
        "points below the reference. Latency: batch 1 on {} ({} CPUs).".format(
            report["split"], report["dataset"], report["layout"], report["images"], tol,
            report["machine"]["platform"], report["machine"]["cpu_count"]), "",
        "| format | file | size (MB) | mIoU | Δ mIoU (points) | pixel acc. | agreement | "
        "max abs Δp (golden) | latency median / p90 (ms) | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["formats"]:
        latency = row["latency_ms"]
        lines.append("| {} |".format(" | ".join(_cell(c) for c in (
            row["format"], row["file"] or "-",
            _num(row["size_bytes"] and row["size_bytes"] / 1e6, "{:.2f}"),
            _num(row["miou"]), _num(row["delta_points"], "{:+.2f}"),
            _num(row["pixel_accuracy"]), _num(row["agreement"] and 100 * row["agreement"],
                                              "{:.3f} %"),
            _num(row["golden"] and row["golden"]["max_abs_diff"], "{:.2e}"),
            "{:.1f} / {:.1f}".format(latency["median"], latency["p90"]) if latency else "-",
            _status(row)))))
    lines += ["", "### IoU per class", ""] + _class_table(report["formats"])
    if report["failures"]:
        lines += ["", "**FAILED:**"] + ["- {}".format(f) for f in report["failures"]]
    return "\n".join(lines) + "\n"


def _class_table(rows):
    scored = [r for r in rows if r["iou_per_class"]]
    if not scored:
        return ["(no format was scored)"]
    lines = ["| class | {} |".format(" | ".join(r["format"] for r in scored)),
             "|---|{}".format("---|" * len(scored))]
    for name in scored[0]["iou_per_class"]:
        lines.append("| {} | {} |".format(_cell(name), " | ".join(
            _num(r["iou_per_class"].get(name)) for r in scored)))
    return lines


def write_reports(report, json_path, markdown_path):
    """validation.json and validation.md, each written atomically."""
    write_text_atomic(json_path, json.dumps(report, indent=2, sort_keys=True,
                                            allow_nan=False) + "\n")
    write_text_atomic(markdown_path, format_markdown(report))
    return json_path, markdown_path


# -- CLI -----------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = cli.make_parser(
        "Validate a bundle's formats (Keras, ONNX FP32, ONNX FP16, TensorRT) against Keras: "
        "mIoU and per-class IoU on a split, label agreement, max |dp| on golden.npz, batch-1 "
        "latency and file size, as a Markdown table and JSON. Exit status 2 when a format's "
        "mIoU falls more than --tolerance points below the reference.")
    cli.add_bundle_arg(parser)
    add_dataset_args(parser, "data (default: the dataset the bundle was trained on)")
    parser.add_argument("--formats", nargs="+", default=None, choices=FORMATS,
                        help="formats to validate; named ones must be available (default: "
                             "all, unavailable ones listed with the reason)")
    parser.add_argument("--reference", default="auto", choices=REFERENCES,
                        help="keras: run model.h5 here; golden: evaluation.json + golden.npz "
                             "(what the Jetson uses); auto: keras when TensorFlow imports")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="allowed mIoU drop below the reference, in points (0.5 = 0.005)")
    parser.add_argument("--runs", type=int, default=20, help="timed batch-1 runs per format")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="ONNX Runtime device")
    parser.add_argument("--engine", default=None,
                        help="TensorRT engine file (default: the newest matching one in "
                             "BUNDLE/engines)")
    parser.add_argument("--json", default=None, help="JSON report (default BUNDLE/{})".format(
        VALIDATION_JSON))
    parser.add_argument("--markdown", default=None,
                        help="Markdown report (default BUNDLE/{})".format(VALIDATION_MD))
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    report = validate_bundle(args.bundle, args.data, args.layout, args.split, args.classes,
                             args.formats, args.tolerance, args.runs, args.warmup,
                             args.device, args.reference, args.engine)
    bundle = Bundle(args.bundle)
    json_path, md_path = write_reports(report, args.json or bundle.path(VALIDATION_JSON),
                                       args.markdown or bundle.path(VALIDATION_MD))
    print(format_markdown(report))
    print("wrote {} and {}".format(json_path, md_path))
    require_passed(report)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
