"""Measuring one format: mIoU on a split, label agreement, golden max |dp|, latency, size."""
import logging
import os

import numpy as np

from edge.backends import find_row
from edge.backends.table import Unavailable, open_row
from nanoseg import golden
from nanoseg.errors import NanosegError
from nanoseg.evaluation import evaluate, iterate_validation
from nanoseg.preprocess import probabilities_to_labels
from nanoseg.timing import latency_stats, time_calls

LOG = logging.getLogger(__name__)


def new_row(name):
    """A report row for format ``name`` with nothing measured yet."""
    return {"format": name, "status": "unavailable", "reason": None, "file": None,
            "size_bytes": None, "miou": None, "pixel_accuracy": None, "iou_per_class": None,
            "images": None, "delta_points": None, "agreement": None, "golden": None,
            "latency_ms": None, "backend": None}


def set_file(row, path):
    row["file"] = os.path.basename(path)
    row["size_bytes"] = os.path.getsize(path) if os.path.isfile(path) else None


def latency_ms(backend, x, runs, warmup):
    """Median and p90 of ``runs`` batch-1 ``infer`` calls after ``warmup`` untimed ones.

    The warm-up absorbs one-off costs (graph tracing, CUDA context, memory arenas) that a
    running camera pays once and never again.
    """
    stats = latency_stats(time_calls(lambda: backend.infer(x), runs, warmup))
    return {"median": stats["median_ms"], "p90": stats["p90_ms"], "runs": int(runs),
            "warmup": int(warmup)}


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


def run_format(bundle, name, contract, dataset, golden_data, options):
    """One row (and its labels, None unless it ran): unavailable, failed to load, or measured.

    A format whose artifact or library is missing is listed with the reason; a NanosegError
    while loading (the artifact exists and its library imports) is a broken artifact.
    """
    row = new_row(name)
    try:
        backend, path = open_row(find_row(name), bundle, options["device"], options["engine"])
    except Unavailable as exc:
        row["reason"] = str(exc)
        LOG.info("%s: unavailable (%s)", name, exc)
        return row, None
    except NanosegError as exc:
        row.update(status="failed", reason=str(exc))
        LOG.error("%s: %s", name, exc)
        return row, None
    set_file(row, path)
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
