"""Every measurement of one benchmark run, in the table's order, and the Markdown table."""
import os

from edge.benchmarks.goals import host_cpu_ms_per_frame, ratios
from edge.benchmarks.loops import run_loop, run_viewer_loop
from edge.benchmarks.multi import run_dashboard_loop, run_sources_loop
from edge.benchmarks.stages import (benchmark_backend, benchmark_encode,
                                    benchmark_preprocessing, benchmark_render,
                                    decode_cpu_ms, first_frame)
from edge.sinks import MaskSink, VideoSink


def sink_note(summary):
    """What the sinks' workers report: frames written, producer waits, deepest queue."""
    parts = []
    for sink in summary.get("sinks", ()):
        if sink["delivery"] == "every":
            parts.append("{} {} written, waited {}x {:.0f} ms, max queue {}".format(
                sink["sink"], sink["written"], sink["waits"], sink["wait_total_ms"],
                sink["max_queue"]))
        elif sink["delivery"] == "latest":
            parts.append("{} {} JPEGs".format(sink["sink"], sink.get("encoded",
                                                                      sink["written"])))
    return "; ".join(parts)


def markdown_table(rows):
    """rows of (what, median ms, p90 ms, FPS, note) -> a Markdown table string."""
    lines = ["| what | median ms | p90 ms | FPS | note |", "|---|---|---|---|---|"]
    for what, median, p90, fps, note in rows:
        lines.append("| {} | {} | {} | {} | {} |".format(
            what, _num(median), _num(p90), _num(fps), note))
    return "\n".join(lines)


def _num(value):
    return "-" if value is None else "{:.2f}".format(value)


def stage_ms(summary, stage):
    return summary["stages"][stage]["median_ms"]


def loop_row(what, summary):
    note = "{} frames, infer {} ms, CPU {:.1f} ms/frame".format(
        summary["frames"], stage_ms(summary, "infer"), summary["cpu_ms_per_frame"])
    if summary["stages"]["render"]["count"]:
        note += ", render {} ms".format(stage_ms(summary, "render"))
    extra = sink_note(summary)
    return (what, None, None, summary["fps"], note + ("; " + extra if extra else ""))


def stats_row(what, stats, note):
    note = "CPU median {:.2f} ms; {}".format(stats["cpu_median_ms"], note)
    return (what, stats["median_ms"], stats["p90_ms"], stats.get("fps") if what.startswith(
        "raw inference") else None, note)


def multi_source_rows(backend, args, results):
    """1, 2 and 4 copies of --video as separate sources on the one backend (peak RSS
    sampled), then one source with the dashboard and one client."""
    rows = []
    for count in (1, 2, 4):
        summary = results["sources_{}".format(count)] = run_sources_loop(
            backend, args.video, count, args.max_frames)
        note = "per source FPS {}; peak RSS {} MiB".format(
            " / ".join("{:.1f}".format(f) for f in summary["per_source_fps"]),
            summary["rss_mib"])
        rows.append(("{} source{} (total)".format(count, "s" if count > 1 else ""), None,
                     None, summary["fps"], note))
    summary = results["loop_dashboard"] = run_dashboard_loop(backend, args.video,
                                                            args.max_frames, args.view_fps)
    rows.append(loop_row("loop + dashboard (1 client: stream + /stats.json every {:g} s)"
                         .format(0.5), summary))
    return rows


def measure(backend, args, folder):
    """Every measurement: (results dict, table rows), in the table's order."""
    contract = backend.contract
    size = "{}x{}".format(contract.width, contract.height)
    results = {"backend": backend.describe(), "input": size, "host_only_ms": args.host_only}
    results["raw_inference"] = benchmark_backend(backend, args.runs, args.warmup)
    rows = [stats_row("raw inference, batch 1, {}".format(size), results["raw_inference"],
                      backend.describe())]
    frame = first_frame(args.video) if args.video else None
    if args.video:
        results["bare_loop"] = run_loop(backend, args.video, args.max_frames)
        sinks = [VideoSink(os.path.join(folder, "loop.mp4"), 30.0),
                 MaskSink(os.path.join(folder, "masks"))]
        results["loop_video_masks"] = run_loop(backend, args.video, args.max_frames, sinks)
        results["loop_viewer"] = run_viewer_loop(backend, args.video, args.max_frames,
                                                 args.view_fps)
        rows += [loop_row("bare loop (headless, no sinks)", results["bare_loop"]),
                 loop_row("loop + video + masks", results["loop_video_masks"]),
                 loop_row("loop + viewer (1 local client, --view-fps {:g})".format(
                     args.view_fps), results["loop_viewer"])]
        rows += multi_source_rows(backend, args, results)
    input_buffer = getattr(backend, "input_buffer", None)  # fakes in tests may lack it
    results["preprocess"], results["opencv_lower_bound"] = benchmark_preprocessing(
        contract, args.runs, args.warmup, frame, input_buffer() if input_buffer else None)
    results["render"], results["render_lower_bound"], rendered = benchmark_render(
        contract, args.runs, args.warmup, frame)
    results["encode"], results["encode_jpeg"] = benchmark_encode(rendered, args.runs,
                                                                 args.warmup, folder)
    rows += [stats_row("preprocess 1280x720 -> {} (contract)".format(size),
                       results["preprocess"], "nanoseg.preprocess.preprocess_image into the "
                                              "backend's input buffer"),
             stats_row("OpenCV lower bound 1280x720 -> {}".format(size),
                       results["opencv_lower_bound"], "resize + cvtColor + scale"),
             stats_row("render 1280x720", results["render"],
                       "overlay + legend + statistics, every class visible"),
             stats_row("render lower bound", results["render_lower_bound"],
                       "one cv2.addWeighted of two 720p frames"),
             stats_row("encode 1280x720", results["encode"], "one mp4v frame (VideoWriter); "
                       "JPEG q80 median {} ms".format(results["encode_jpeg"]["median_ms"]))]
    if args.video:
        results["host_cpu_ms_per_frame"] = host_cpu_ms_per_frame(results)
        results["decode_cpu_ms_per_frame"] = decode_cpu_ms(args.video, args.max_frames)
    results["ratios"] = ratios(results)
    return results, rows
