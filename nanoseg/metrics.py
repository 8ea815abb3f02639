"""Segmentation metrics from label maps: one implementation for every backend.

Keras, ONNX Runtime and TensorRT evaluations all turn their outputs into label maps
(``nanoseg.preprocess.probabilities_to_labels``) and feed them here, so a number in
``evaluation.json`` means the same thing whichever engine produced it. Pixels whose ground
truth is the ignore id are excluded from every count.

numpy only, Python 3.6 syntax: this module runs on the Jetson.
"""
import numpy as np

from nanoseg.contract import IGNORE_ID
from nanoseg.errors import NanosegError


def confusion_matrix(pred_labels, gt_labels, num_labels, ignore_id=IGNORE_ID):
    """(num_labels, num_labels) int64 counts, rows = ground truth, columns = prediction.

    Ground-truth pixels equal to ``ignore_id`` are dropped; any other id outside
    ``0..num_labels-1`` (in either map) is a label-space bug and raises.
    """
    pred = np.asarray(pred_labels)
    gt = np.asarray(gt_labels)
    if pred.shape != gt.shape:
        raise NanosegError("prediction shape {} differs from ground truth shape {}: resize "
                           "the prediction to the mask (labels_to_frame) or the mask to the "
                           "model size".format(pred.shape, gt.shape))
    pred = pred.reshape(-1).astype(np.int64)
    gt = gt.reshape(-1).astype(np.int64)
    if ignore_id is not None:
        keep = gt != ignore_id
        pred, gt = pred[keep], gt[keep]
    for what, values in (("ground truth", gt), ("prediction", pred)):
        if values.size and (values.min() < 0 or values.max() >= num_labels):
            raise NanosegError("{} holds label ids outside 0..{} (found {}..{}): the mask "
                               "is not in the contract's label space".format(
                                   what, num_labels - 1, values.min(), values.max()))
    flat = gt * num_labels + pred
    counts = np.bincount(flat, minlength=num_labels * num_labels)
    return counts.reshape(num_labels, num_labels)


def iou_per_class(matrix):
    """IoU of every label = TP / (TP + FP + FN); NaN for a label absent from both maps.

    NaN (not 0 or 1) because a class that never occurs says nothing about the model; mIoU
    skips it, so a validation split without any cyclist does not drag the mean down.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(matrix)
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, tp / np.maximum(union, 1e-300), np.nan)


def mean_iou(matrix):
    """Mean IoU over labels present in prediction or ground truth (NaN if none are)."""
    ious = iou_per_class(matrix)
    present = ~np.isnan(ious)
    return float(np.mean(ious[present])) if present.any() else float("nan")


def pixel_accuracy(matrix):
    """Correct pixels / scored pixels (ignore excluded); NaN when nothing was scored."""
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    return float(np.trace(matrix) / total) if total > 0 else float("nan")


class MetricAccumulator(object):
    """Sums a confusion matrix over (prediction, ground truth) label-map pairs.

    Backends differ only in how they produce ``pred_labels``; feeding the same accumulator
    keeps Keras, ONNX and TensorRT evaluations directly comparable.
    """

    def __init__(self, class_names, ignore_id=IGNORE_ID):
        self.class_names = [str(n) for n in class_names]
        if len(self.class_names) < 2:
            raise NanosegError("metrics need at least two labels (background + one class), "
                               "got {}".format(self.class_names))
        self.ignore_id = ignore_id
        self.matrix = np.zeros((len(self.class_names),) * 2, dtype=np.int64)
        self.images = 0

    @property
    def num_labels(self):
        return len(self.class_names)

    def update(self, pred_labels, gt_labels):
        """Add one label map, or a batch of them (same leading shape in both)."""
        self.matrix += confusion_matrix(pred_labels, gt_labels, self.num_labels,
                                        self.ignore_id)
        self.images += 1 if np.ndim(gt_labels) == 2 else int(np.shape(gt_labels)[0])

    def result(self):
        """A JSON-ready report: mIoU, per-class IoU (None for absent labels), accuracy."""
        ious = iou_per_class(self.matrix)
        return {
            "miou": _finite_or_none(mean_iou(self.matrix)),
            "pixel_accuracy": _finite_or_none(pixel_accuracy(self.matrix)),
            "iou_per_class": dict((name, _finite_or_none(v))
                                  for name, v in zip(self.class_names, ious)),
            "images": self.images,
            "scored_pixels": int(self.matrix.sum()),
            "ignore_id": self.ignore_id,
            "confusion_matrix": self.matrix.tolist(),
        }


def _finite_or_none(value):
    """JSON has no NaN: an undefined metric is written as null."""
    value = float(value)
    return None if np.isnan(value) else value


def format_report(report):
    """A few human-readable lines for a CLI to print."""
    lines = ["mIoU {} | pixel accuracy {} | {} images, {} scored pixels".format(
        _fmt(report["miou"]), _fmt(report["pixel_accuracy"]), report["images"],
        report["scored_pixels"])]
    for name, value in report["iou_per_class"].items():
        lines.append("  IoU {:<20s} {}".format(name, _fmt(value)))
    return "\n".join(lines)


def _fmt(value):
    return "n/a" if value is None else "{:.4f}".format(value)
