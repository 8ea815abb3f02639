"""Benchmark a bundle's backend: latency and FPS at batch 1, end-to-end FPS, preprocessing cost.

    python3 edge/benchmark.py --bundle runs/nails --backend auto --video clip.mp4 --runs 100

Prints a Markdown table: backend latency (median, p90) and FPS on the contract's input; the
runtime's end-to-end FPS on a video (headless, no sinks); the contract preprocessing of a
1280x720 frame beside the bare OpenCV lower bound (resize + cvtColor + scale). numpy + OpenCV
(+ the backend's library): it runs on the Jetson too.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json
import logging
import sys
import time

import cv2
import numpy as np

from edge import cli
from edge.backends import BACKENDS, DEVICES, load_backend
from edge.contract import INTERPOLATIONS, preprocess_image, write_text_atomic
from edge.errors import NanosegError
from edge.runtime import run_pipeline
from edge.sources import open_source

LOG = logging.getLogger("benchmark")
FRAME_SIZE = (720, 1280)  # a 720p camera frame (height, width)


def latency_stats(seconds):
    """{median_ms, p90_ms, fps} from per-run durations in seconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    median = float(np.median(ms))
    return {"median_ms": round(median, 3), "p90_ms": round(float(np.percentile(ms, 90)), 3),
            "fps": round(1000.0 / median, 2) if median > 0 else None, "runs": int(ms.size)}


def time_calls(function, runs, warmup):
    """Durations of ``runs`` calls of ``function()`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        durations.append(time.perf_counter() - start)
    return durations


def benchmark_backend(backend, runs, warmup):
    """Batch-1 inference on a preprocessed random frame (weights do not care about pixels)."""
    contract = backend.contract
    frame = np.random.RandomState(0).randint(0, 256, FRAME_SIZE + (3,), dtype=np.uint8)
    x = preprocess_image(frame, contract, "BGR")
    return latency_stats(time_calls(lambda: backend.infer(x), runs, warmup))


def opencv_lower_bound(frame, contract):
    """The least any preprocessing must do: resize, BGR->RGB, one multiply to float32."""
    small = cv2.resize(frame, (contract.width, contract.height),
                       interpolation=INTERPOLATIONS[contract.interpolation])
    small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
    return small.astype(np.float32) * np.float32(contract.normalization.scale)


def benchmark_preprocessing(contract, runs, warmup, frame=None):
    """(contract preprocessing stats, OpenCV lower bound stats) on a 1280x720 BGR frame."""
    if frame is None:
        frame = np.random.RandomState(1).randint(0, 256, FRAME_SIZE + (3,), dtype=np.uint8)
    frame = cv2.resize(frame, (FRAME_SIZE[1], FRAME_SIZE[0]))
    ours = time_calls(lambda: preprocess_image(frame, contract, "BGR"), runs, warmup)
    bare = time_calls(lambda: opencv_lower_bound(frame, contract), runs, warmup)
    return latency_stats(ours), latency_stats(bare)


def benchmark_video(backend, video, max_frames):
    """The runtime's end-to-end summary on a video (headless, every frame, no sinks)."""
    stream = open_source(video)
    return run_pipeline(stream, backend, [], max_frames=max_frames, log_every=30.0)


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


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    parser.add_argument("--backend", default="auto", choices=BACKENDS,
                        help="auto: a matching TensorRT engine, else ONNX Runtime")
    parser.add_argument("--device", default="cpu", choices=DEVICES,
                        help="ONNX Runtime execution provider")
    parser.add_argument("--engine", default=None, help="a TensorRT engine file")
    parser.add_argument("--video", default=None, help="video for the end-to-end FPS")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs first")
    parser.add_argument("--max-frames", type=int, default=300,
                        help="frames of --video to run end to end")
    parser.add_argument("--json", default=None, help="also write the results as JSON here")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    if args.runs <= 0 or args.warmup < 0:
        raise NanosegError("--runs must be positive and --warmup not negative")
    backend = load_backend(args.bundle, args.backend, args.device, args.engine)
    try:
        contract = backend.contract
        size = "{}x{}".format(contract.width, contract.height)
        results = {"backend": backend.describe(), "input": size}
        results["infer"] = benchmark_backend(backend, args.runs, args.warmup)
        frame = first_frame(args.video) if args.video else None
        results["preprocess"], results["opencv_lower_bound"] = benchmark_preprocessing(
            contract, args.runs, args.warmup, frame)
        infer = results["infer"]
        rows = [("{} infer, batch 1, {}".format(backend.name, size), infer["median_ms"],
                 infer["p90_ms"], infer["fps"], backend.describe()),
                ("preprocess 1280x720 -> {} (contract)".format(size),
                 results["preprocess"]["median_ms"], results["preprocess"]["p90_ms"], None,
                 "edge.contract.preprocess_image"),
                ("OpenCV lower bound 1280x720 -> {}".format(size),
                 results["opencv_lower_bound"]["median_ms"],
                 results["opencv_lower_bound"]["p90_ms"], None, "resize + cvtColor + scale")]
        if args.video:
            summary = benchmark_video(backend, args.video, args.max_frames)
            results["end_to_end"] = summary
            rows.append(("end to end on {}".format(args.video), None, None, summary["fps"],
                         "{} frames, infer median {} ms".format(
                             summary["frames"], summary["stages"]["infer"]["median_ms"])))
    finally:
        backend.close()  # also when the video or a measurement fails
    print(markdown_table(rows))
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
