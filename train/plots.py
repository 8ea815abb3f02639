"""The bundle's two pictures: training curves and per-class IoU (matplotlib, Agg backend).

Agg renders without a display (servers, CI, ssh); each PNG is written to a temporary name
and renamed, so a reader never opens half an image.
"""
import csv
import logging

from nanoseg.files import atomic_path

LOG = logging.getLogger(__name__)


def _pyplot():
    """pyplot on the Agg backend, chosen before pyplot is first imported."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    """savefig to ``path`` atomically, then free the figure."""
    plt = _pyplot()
    try:
        with atomic_path(path, ".png") as tmp:  # savefig picks the format from the name
            fig.savefig(tmp, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def read_log(csv_path):
    """Keras' CSVLogger file -> {column: [float, ...]} (epochs in file order)."""
    columns = {}
    with open(csv_path) as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                try:
                    columns.setdefault(key, []).append(float(value))
                except (TypeError, ValueError):
                    columns.setdefault(key, []).append(float("nan"))
    return columns


def plot_curves(csv_path, png_path, metric="iou_score"):
    """Loss and ``metric`` per epoch, training vs validation, side by side."""
    log = read_log(csv_path)
    epochs = [int(e) + 1 for e in log.get("epoch", [])]
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, name in zip(axes, ("loss", metric)):
        for key, style in ((name, "-o"), ("val_" + name, "--s")):
            if key in log:
                axis.plot(epochs, log[key], style, label=key)
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(True, alpha=0.3)
        axis.legend()
    return _save(fig, png_path)


def plot_iou_per_class(report, png_path, title="IoU per class"):
    """A bar per label (absent labels shown as n/a), with the mIoU as a line."""
    names = list(report["iou_per_class"])
    values = [report["iou_per_class"][n] for n in names]
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(max(4.0, 0.8 * len(names) + 2), 4))
    bars = axis.bar(names, [v or 0.0 for v in values], color="#4c72b0")
    for bar, value in zip(bars, values):
        axis.text(bar.get_x() + bar.get_width() / 2, (value or 0.0) + 0.01,
                  "n/a" if value is None else "{:.3f}".format(value), ha="center",
                  va="bottom", fontsize=8)
    if report.get("miou") is not None:
        axis.axhline(report["miou"], color="#c44e52", linestyle="--",
                     label="mIoU {:.3f}".format(report["miou"]))
        axis.legend()
    axis.set_ylim(0, 1.08)
    axis.set_ylabel("IoU")
    axis.set_title(title)
    plt.setp(axis.get_xticklabels(), rotation=30, ha="right")
    return _save(fig, png_path)
