"""The whole validation of a bundle: every format against the reference, gated."""
from convert.validation.measure import label_agreement, run_format
from convert.validation.reference import (describe_reference, gate, keras_reason,
                                          load_golden_for, make_reference_row,
                                          resolve_reference)
from convert.validation.report import machine_info
from edge.backends import formats as all_formats
from nanoseg.bundle import Bundle
from nanoseg.errors import NanosegError
from nanoseg.evaluation import dataset_for

DEFAULT_TOLERANCE = 0.5   # mIoU points (0.5 points = 0.005 mIoU)


def check_options(tolerance, runs, warmup, formats):
    if tolerance < 0:
        raise NanosegError("--tolerance is in mIoU points and must be >= 0, got {}".format(
            tolerance))
    if runs < 1 or warmup < 0:
        raise NanosegError("--runs must be >= 1 and --warmup >= 0, got {} and {}".format(
            runs, warmup))
    unknown = [f for f in formats if f not in all_formats()]
    if unknown:
        raise NanosegError("unknown --formats {}: use {}".format(unknown,
                                                                 ", ".join(all_formats())))


def validate_bundle(bundle_dir, data=None, layout=None, split="val", classes=None,
                    formats=None, tolerance=DEFAULT_TOLERANCE, runs=20, warmup=3,
                    device="cpu", reference="auto", engine_path=None):
    """The validation report (a JSON-ready dict); ``report["failures"]`` lists what failed.

    ``formats`` None means every format, where unavailable ones are only listed; formats
    named explicitly must run. Nothing is raised for a failed gate: the caller writes the
    report first, then decides (see :func:`convert.validation.reference.require_passed`).
    """
    required = list(formats or [])
    formats = [f for f in all_formats() if f in (formats or all_formats())]
    check_options(tolerance, runs, warmup, required)
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
