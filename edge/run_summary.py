"""What a run reports: the progress line's parts, the summary dict, its log lines and JSON."""
import collections
import json

from edge import delivery
from nanoseg.files import write_text_for_flag


def non_finite_note(count):
    """``, 3 with NaN/Inf output`` once any frame's model output was not finite."""
    return ", {} with NaN/Inf output".format(count) if count else ""


def writer_progress(sinks):
    """`` | VideoSink queue 3/8 (max 8), waited 12 times (840.0 ms)`` for each writer that
    keeps every frame: a writer falling behind shows while the run goes on, not only at the
    end (its first wait also logs a WARNING, edge/delivery.py)."""
    parts = []
    for sink in sinks:
        if isinstance(sink, delivery.EveryWorker):
            stats = sink.stats()
            parts.append("{} queue {}/{} (max {}), waited {} times ({:.1f} ms)".format(
                sink.name, sink.queue.qsize(), stats["queue_size"], stats["max_queue"],
                stats["waits"], stats["wait_total_ms"]))
    return " | " + "; ".join(parts) if parts else ""


def summarize(state, stream, backend, render, timer, elapsed):
    """The run's summary: counts, FPS, per-stage timings, why it ended, any error."""
    summary = collections.OrderedDict()
    summary["frames"] = state["frames"]
    summary["written"] = render.written
    summary["captured"] = stream.captured
    summary["dropped"] = stream.dropped
    summary["non_finite_frames"] = state["non_finite_frames"]
    summary["reconnects"] = stream.reconnects
    summary["stalls"] = getattr(stream, "stalls", 0)
    summary["skipped_files"] = getattr(stream, "skipped", 0)
    summary["elapsed_s"] = round(elapsed, 3)
    summary["fps"] = round(state["frames"] / elapsed, 3) if elapsed > 0 else 0.0
    summary["end_reason"] = state["end_reason"]
    summary["source"] = stream.description
    summary["backend"] = backend.describe()
    summary["stages"] = timer.summary()
    summary["error"] = render.error or stream.error
    summary["sinks"] = [delivery.sink_stats(sink) for sink in render.sinks]
    if hasattr(stream, "source_summaries"):  # edge.multisource.MultiStream
        summary["sources"] = stream.source_summaries()
    return summary


def format_summary(summary):
    """Human-readable lines for the log."""
    lines = ["{frames} frames in {elapsed_s:.1f} s = {fps:.2f} FPS, {dropped} dropped, "
             "{reconnects} reconnects, ended: {end_reason}".format(**summary)]
    if summary.get("non_finite_frames"):
        lines.append("  {} frames had NaN/Inf in the model output (their labels are "
                     "meaningless): check the model with convert/validate.py".format(
                         summary["non_finite_frames"]))
    if summary.get("skipped_files"):
        lines.append("  {} truncated image files skipped (named in the warnings above): "
                     "replace them".format(summary["skipped_files"]))
    for name, stage in summary["stages"].items():
        if stage["count"]:
            lines.append("  {:<8} median {:7.2f} ms   p90 {:7.2f} ms".format(
                name, stage["median_ms"], stage["p90_ms"]))
    for sink in summary.get("sinks", ()):
        lines.append("  " + format_sink(sink))
    return lines


def format_sink(stats):
    """One log line per sink: frames written, and the producer's waits or superseded frames."""
    line = "{:<12} {:<6} {} written".format(stats["sink"], stats["delivery"],
                                            stats.get("written", "-"))
    if stats.get("kept") is not None and stats["kept"] != stats.get("written"):
        line += " but only {} kept in the file".format(stats["kept"])
    if stats["delivery"] == "every":
        line += ", producer waited {} times ({:.1f} ms in all, median {:.1f} ms), max " \
                "queue {}/{}".format(stats["waits"], stats["wait_total_ms"],
                                     stats["wait_median_ms"], stats["max_queue"],
                                     stats["queue_size"])
    elif stats["delivery"] == "latest":
        line += ", {} superseded by newer frames".format(stats["superseded"])
    return line


def write_summary(summary, path, flag="--summary"):
    """The summary as JSON, written atomically; a failed write is one line naming ``path``."""
    write_text_for_flag(path, json.dumps(summary, indent=2) + "\n", flag)
