"""The validation report as Markdown and JSON, and where its latencies were measured."""
import json
import os
import platform
import sys

import numpy as np

from nanoseg.files import write_text_atomic


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
