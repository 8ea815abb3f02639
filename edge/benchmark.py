"""Benchmark the edge path: inference, the loop with and without sinks, each host stage.

    python3 edge/benchmark.py --bundle runs/nails --backend auto --video clip720.mp4
    python3 edge/benchmark.py --bundle runs/nails --video clip720.mp4 --host-only 33

Prints one Markdown table (median / p90 ms, or FPS) and, under it, the ratios the host path
is judged by: ``raw inference`` (batch 1 on the contract's input), ``bare loop`` (the
runtime on --video, headless, no sinks), ``loop + video + masks`` (mp4 and mask PNGs on
their workers), ``loop + viewer`` (one local MJPEG client connected), ``preprocess`` and
its ``OpenCV lower bound``, ``render 1280x720`` and its ``render lower bound`` (one
cv2.addWeighted of two 720p frames), ``encode 1280x720`` (one mp4v frame).

``--host-only MS`` is a measurement tool, not a backend: inference becomes a sleep of MS ms
(no CPU) returning a fixed label map of the contract's size, so the host path is measured as
it runs beside a GPU (33 ms: a 30 FPS engine). numpy + OpenCV (+ the backend's library):
it runs on the Jetson too.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json
import logging
import os
import shutil
import socket
import sys
import tempfile
import threading
import time

import cv2
import numpy as np

from edge import overlay
from nanoseg import cli
from edge.backends import BACKENDS, DEVICES, Backend, load_backend
from nanoseg.bundle import Bundle
from nanoseg.files import write_text_atomic
from nanoseg.preprocess import INTERPOLATIONS, preprocess_image
from nanoseg.errors import NanosegError
from nanoseg.timing import latency_stats, time_calls, time_interleaved
from edge.runtime import run_pipeline
from edge.sinks import MaskSink, VideoSink, ViewerSink
from edge.sources import open_source
from edge.viewer import MjpegViewer

LOG = logging.getLogger("benchmark")
FRAME_SIZE = (720, 1280)  # a 720p camera frame (height, width)
STAGE_TEXT = [("capture", 1.0), ("pre", 0.5), ("infer", 33.0), ("post", 0.1), ("render", 2.0)]
GOALS = (  # (name, numerator, denominator, comparison, limit): the host-path goals
    ("loop + video + masks / bare loop (FPS)", "loop_video_masks", "bare_loop", ">=", 0.95),
    ("bare loop / raw inference (FPS over all frames / calls)", "bare_loop", "raw_inference",
     ">=", 0.95),
    ("preprocess / OpenCV lower bound (CPU ms)", "preprocess", "opencv_lower_bound", "<=",
     1.2),
    ("render 1280x720 / render lower bound (CPU ms)", "render", "render_lower_bound", "<=",
     1.5),
)
CPU_GOAL_MS = 8.0


def fixed_labels(contract):
    """A label map of the contract's size with every label in vertical bands (0 included)."""
    columns = np.arange(contract.width) * contract.num_labels // contract.width
    return np.repeat(columns.astype(np.uint8)[None, :], contract.height, axis=0)


def labels_to_probabilities(labels, contract):
    """Probabilities (H,W,C) whose labels (probabilities_to_labels) are ``labels``."""
    if contract.activation == "sigmoid":
        return (labels == 1).astype(np.float32)[:, :, None]
    return np.eye(contract.output_channels, dtype=np.float32)[labels]


class HostOnlyStandIn(Backend):
    """``--host-only MS``: a sleep of MS ms instead of inference, returning a fixed label map.

    A measurement tool, not a backend: it stands in for a GPU that takes MS ms and leaves
    the CPU free, so the benchmark shows what the host path costs beside it.
    """

    name = "host-only"

    def __init__(self, contract, milliseconds):
        Backend.__init__(self, contract, contract)
        self.seconds = float(milliseconds) / 1000.0
        self._probs = labels_to_probabilities(fixed_labels(contract), contract)

    def infer(self, x):
        time.sleep(self.seconds)
        return self._probs

    def describe(self):
        return "host-only stand-in: sleep {:g} ms, fixed label map".format(
            self.seconds * 1000.0)


def benchmark_backend(backend, runs, warmup):
    """Batch-1 inference on a preprocessed random frame (weights do not care about pixels);
    also the process CPU time per call (``cpu_ms``: 0 for the host-only stand-in)."""
    contract = backend.contract
    frame = np.random.RandomState(0).randint(0, 256, FRAME_SIZE + (3,), dtype=np.uint8)
    x = preprocess_image(frame, contract, "BGR")
    stats = latency_stats(time_calls(lambda: backend.infer(x), runs, warmup))
    stats["cpu_ms"] = stats["cpu_median_ms"]
    return stats


def opencv_lower_bound(frame, contract):
    """The least any preprocessing must do: resize, BGR->RGB, one multiply to float32."""
    small = cv2.resize(frame, (contract.width, contract.height),
                       interpolation=INTERPOLATIONS[contract.interpolation])
    small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return small.astype(np.float32) * np.float32(contract.normalization.scale)


def as_720p(frame):
    if frame is None:
        frame = np.random.RandomState(1).randint(0, 256, FRAME_SIZE + (3,), dtype=np.uint8)
    return cv2.resize(frame, (FRAME_SIZE[1], FRAME_SIZE[0]))


def benchmark_preprocessing(contract, runs, warmup, frame=None, out=None):
    """(contract preprocessing stats, OpenCV lower bound stats) on a 1280x720 BGR frame,
    preprocessing into ``out`` (the backend's input buffer) as the runtime does."""
    frame = as_720p(frame)
    ours, bare = time_interleaved([lambda: preprocess_image(frame, contract, "BGR", out=out),
                                   lambda: opencv_lower_bound(frame, contract)], runs, warmup)
    return latency_stats(ours), latency_stats(bare)


def benchmark_render(contract, runs, warmup, frame=None):
    """(render stats, render lower bound stats): the overlay of the fixed label map (every
    class visible) with legend and statistics, beside one bare cv2.addWeighted."""
    frame = as_720p(frame)
    renderer = overlay.Renderer(contract, 0.5)
    labels = fixed_labels(contract)
    other = frame[::-1].copy()
    ours, bare = time_interleaved([
        lambda: renderer.render(frame, labels, 30.0, STAGE_TEXT),
        lambda: cv2.addWeighted(frame, 0.5, other, 0.5, 0.0)], runs, warmup)
    return latency_stats(ours), latency_stats(bare), renderer.render(frame, labels, 30.0,
                                                                    STAGE_TEXT)


def benchmark_encode(rendered, runs, warmup, folder):
    """(mp4v frame write stats, JPEG encode stats) of a rendered 720p frame."""
    path = os.path.join(folder, "encode.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 30.0,
                             (rendered.shape[1], rendered.shape[0]))
    if not writer.isOpened():
        raise NanosegError("this OpenCV cannot write mp4v to {}: the encode row needs "
                           "it".format(path))
    try:
        mp4 = time_calls(lambda: writer.write(rendered), runs, warmup)
    finally:
        writer.release()
    params = [int(cv2.IMWRITE_JPEG_QUALITY), 80]
    jpeg = time_calls(lambda: cv2.imencode(".jpg", rendered, params), runs, warmup)
    return latency_stats(mp4), latency_stats(jpeg)


def run_loop(backend, video, max_frames, sinks=()):
    """The runtime's summary on ``video`` with ``sinks``, plus process CPU ms per frame."""
    stream = open_source(video)
    cpu = time.process_time()
    summary = run_pipeline(stream, backend, list(sinks), max_frames=max_frames,
                           log_every=30.0)
    frames = max(summary["frames"], 1)
    summary["cpu_ms_per_frame"] = round((time.process_time() - cpu) * 1000.0 / frames, 3)
    if summary["error"]:
        raise NanosegError("the benchmark loop failed: {}".format(summary["error"]))
    return summary


class StreamClient(object):
    """One local browser stand-in reading /stream.mjpg on a thread until :meth:`stop`."""

    def __init__(self, viewer):
        self.bytes = 0
        self._stop = threading.Event()
        self._sock = socket.create_connection(("127.0.0.1", viewer.port), timeout=2.0)
        self._sock.sendall(b"GET /stream.mjpg HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        self._thread = threading.Thread(target=self._read, name="bench-client", daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop.is_set():
            try:
                data = self._sock.recv(1 << 16)
            except OSError:  # timeout while no frame comes, or the viewer closed
                continue
            if not data:
                return
            self.bytes += len(data)

    def stop(self):
        self._stop.set()
        self._sock.close()
        self._thread.join(3.0)


def run_viewer_loop(backend, video, max_frames, view_fps):
    """The loop with the MJPEG viewer and one connected local client."""
    viewer = MjpegViewer("127.0.0.1", 0, title="benchmark").start()
    sink = ViewerSink(viewer, max_fps=view_fps)
    client = None
    try:
        client = StreamClient(viewer)
        deadline = time.monotonic() + 5.0
        while not viewer.watching and time.monotonic() < deadline:
            time.sleep(0.01)
        if not viewer.watching:
            raise NanosegError("the benchmark's local viewer client did not connect")
        summary = run_loop(backend, video, max_frames, [sink])
    finally:
        if client is not None:
            client.stop()
        viewer.close()
    summary["viewer_bytes"] = client.bytes
    return summary


def decode_cpu_ms(video, max_frames):
    """Process CPU ms per frame of decoding ``video`` alone (part of the loop's capture)."""
    capture = cv2.VideoCapture(video)
    frames, cpu = 0, time.process_time()
    while frames < max_frames and capture.read()[0]:
        frames += 1
    cpu = time.process_time() - cpu
    capture.release()
    return round(cpu * 1000.0 / max(frames, 1), 3)


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


def first_frame(video):
    """The video's first frame, to time preprocessing on real pixels (None if unreadable)."""
    capture = cv2.VideoCapture(video)
    ok, frame = capture.read()
    capture.release()
    return frame if ok else None


def markdown_table(rows):
    """rows of (what, median ms, p90 ms, FPS, note) -> a Markdown table string."""
    lines = ["| what | median ms | p90 ms | FPS | note |", "|---|---|---|---|---|"]
    for what, median, p90, fps, note in rows:
        lines.append("| {} | {} | {} | {} | {} |".format(
            what, _num(median), _num(p90), _num(fps), note))
    return "\n".join(lines)


def _num(value):
    return "-" if value is None else "{:.2f}".format(value)


def goal_value(results, key):
    """The number a goal compares: FPS of a loop or of inference, else the median ms."""
    entry = results.get(key)
    if entry is None:
        return None
    if key == "raw_inference":  # frames per second over all calls, like a loop's FPS
        return entry["mean_fps"]
    if key in ("bare_loop", "loop_video_masks"):
        return entry["fps"]
    return entry["cpu_median_ms"]  # host stages: CPU time, robust to the machine's load


def host_cpu_ms_per_frame(results):
    """Process CPU ms per frame of every host stage but encode: the bare loop's CPU minus
    inference's, plus the render's CPU (not wall: a CPU budget adds CPU times only)."""
    host = results["bare_loop"]["cpu_ms_per_frame"] - results["raw_inference"]["cpu_ms"] + \
        results["render"]["cpu_median_ms"]
    return round(max(host, 0.0), 3)


def ratios(results):
    """[{name, value, goal, met}] for the issue's goals that this run measured."""
    out = []
    for name, top, bottom, op, limit in GOALS:
        a, b = goal_value(results, top), goal_value(results, bottom)
        if a is None or not b:
            continue
        value = a / b
        met = value >= limit if op == ">=" else value <= limit
        out.append({"name": name, "value": round(value, 3), "goal": "{} {}".format(op, limit),
                    "met": bool(met)})
    cpu = results.get("host_cpu_ms_per_frame")
    if cpu is not None:
        out.append({"name": "host CPU per 720p frame, all stages but encode (ms)",
                    "value": cpu, "goal": "<= {}".format(CPU_GOAL_MS),
                    "met": bool(cpu <= CPU_GOAL_MS)})
    return out


def format_ratios(items):
    return "\n".join("- {}: {:.3f} (goal {}: {})".format(
        item["name"], item["value"], item["goal"], "met" if item["met"] else "missed")
        for item in items)


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto: a matching TensorRT engine, else ONNX Runtime")
    parser.add_argument("--device", default="cpu", choices=DEVICES,
                        help="ONNX Runtime execution provider")
    parser.add_argument("--engine", default=None, help="a TensorRT engine file")
    parser.add_argument("--host-only", type=float, default=None, metavar="MS",
                        help="measurement tool, not a backend: replace inference with a "
                             "sleep of MS ms (no CPU) returning a fixed label map, to "
                             "measure the host path as it runs beside a GPU")
    parser.add_argument("--video", default=None,
                        help="video for the loop rows (a 1280x720 one measures 720p)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    parser.add_argument("--max-frames", type=int, default=300,
                        help="frames of --video per loop row")
    parser.add_argument("--view-fps", type=float, default=15.0,
                        help="the viewer's JPEG rate in the 'loop + viewer' row")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def open_backend(args):
    """The backend to measure, or the host-only stand-in (the bundle's contract only)."""
    if args.host_only is None:
        return load_backend(args.bundle, args.backend, args.device, args.engine)
    if args.host_only < 0:
        raise NanosegError("--host-only needs 0 or more milliseconds, got {:g}".format(
            args.host_only))
    return HostOnlyStandIn(Bundle(args.bundle).contract(), args.host_only)


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


def main(args):
    cli.setup_logging(args.log_level)
    if args.runs <= 0 or args.warmup < 0:
        raise NanosegError("--runs must be positive and --warmup not negative")
    if args.view_fps <= 0:
        raise NanosegError("--view-fps must be positive, got {:g}".format(args.view_fps))
    backend = open_backend(args)
    folder = tempfile.mkdtemp(prefix="nanoseg-bench-")
    try:
        results, rows = measure(backend, args, folder)
    finally:
        backend.close()  # also when the video or a measurement fails
        shutil.rmtree(folder, ignore_errors=True)
    print(markdown_table(rows))
    print("")
    print(format_ratios(results["ratios"]))
    if "host_cpu_ms_per_frame" in results:
        print("(host CPU per frame = bare loop process CPU per frame - inference CPU per call "
              "+ render median; of it, decoding --video alone: {:.2f} ms)".format(
                  results["decode_cpu_ms_per_frame"]))
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
