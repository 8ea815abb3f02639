"""What the formats are compared with (Keras run here, or what Keras stored in the bundle),
and the gate that fails a format more than the tolerance below it."""
import json
import logging

from convert.validation.measure import new_row, run_format, set_file
from edge.backends import find_row
from edge.backends.table import unavailable_reason
from nanoseg import golden
from nanoseg.bundle import EVALUATION_JSON, GOLDEN_NPZ, MODEL_H5
from nanoseg.errors import NanosegError
from nanoseg.identity import check_golden_identity

LOG = logging.getLogger(__name__)

REFERENCES = ("auto", "keras", "golden")


def keras_reason(bundle):
    """None when Keras can be the reference here, else why not (without loading the model)."""
    return unavailable_reason(find_row("keras"), bundle)


def load_golden_for(bundle, contract):
    """golden.npz checked against the bundle's contract, or None when the bundle has none."""
    if not bundle.has(GOLDEN_NPZ):
        return None
    data = golden.load_golden(bundle.path(GOLDEN_NPZ))
    contract.check_compatible(data["contract"], "golden.npz")
    check_golden_identity(bundle, contract, data["contract"])
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


def golden_reference_row(bundle, stored, reason):
    """The Keras row when Keras cannot run here: its stored mIoU, its golden outputs."""
    row = new_row("keras (stored)")
    row.update(status="reference", miou=stored["miou"],
               pixel_accuracy=stored.get("pixel_accuracy"),
               iou_per_class=stored.get("iou_per_class"), images=stored.get("images"),
               backend="stored: {} + {}".format(EVALUATION_JSON, GOLDEN_NPZ),
               reason="not run here ({}); mIoU from {}".format(reason, EVALUATION_JSON),
               delta_points=0.0, agreement=1.0)
    if bundle.has(MODEL_H5):
        set_file(row, bundle.path(MODEL_H5))
    return row


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
        row, labels = golden_reference_row(bundle, stored, keras_missing
                                           or "--reference golden"), None
    if row["miou"] is None:
        raise NanosegError("the reference mIoU is undefined on {} (no label occurs in "
                           "prediction or ground truth): validate on another --split".format(
                               dataset.root))
    return row, labels


def describe_reference(kind, golden_data, dataset, split):
    """One sentence saying what the numbers are compared with (shown above the table)."""
    if kind == "keras":
        return ("Keras model.h5 run here on the {} split of {} ({} images); agreement = "
                "per-pixel label agreement with Keras over that split".format(
                    split, dataset.root, len(dataset)))
    return ("golden outputs: Keras mIoU stored in {} (TensorFlow not used here); agreement = "
            "label agreement with the Keras probabilities in {} ({} images)".format(
                EVALUATION_JSON, GOLDEN_NPZ, len(golden_data["inputs"])))


# Formats that run the float32 graph Keras ran, and their max |dp| bound on golden.npz
# (nanoseg/golden.py: real exports measure 1e-6..1.4e-5). Another model differs by >> 1e-2
# even where its mIoU is as good, so this catches a swapped model that mIoU cannot.
FP32_GOLDEN_BOUNDS = {"onnx": golden.FP32_MAX_DIFF}


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
            parity = _fp32_parity_failure(row)
            if parity:
                row["status"] = "failed" if row["status"] == "ok" else row["status"]
                failures.append(parity)
    return failures


def _fp32_parity_failure(row):
    """Why an FP32 format's golden max |dp| fails its bound, or None."""
    bound = FP32_GOLDEN_BOUNDS.get(row["format"])
    measured = (row.get("golden") or {}).get("max_abs_diff")
    if bound is None or measured is None or measured <= bound:
        return None
    return ("{} ({}): max |dp| {:.2e} against {} is above the FP32 bound {:.0e}: it does "
            "not compute what Keras computed (another model, or a broken export); re-export "
            "it with convert/export_onnx.py".format(row["format"], row["file"], measured,
                                                    GOLDEN_NPZ, bound))


def require_passed(report):
    """Raise one NanosegError line naming every failed format (exit status 2 in the CLI)."""
    if report["failures"]:
        raise NanosegError("validation failed against the {} reference: {}".format(
            report["reference"]["kind"], "; ".join(report["failures"])))
