"""Benchmark the edge path: inference, the loop with and without sinks, each host stage.

    python3 edge/benchmark.py --bundle runs/nails --backend auto --video clip720.mp4
    python3 edge/benchmark.py --bundle runs/nails --video clip720.mp4 --host-only 33

Prints one Markdown table (median / p90 ms, or FPS) and, under it, the ratios the host path
is judged by: ``raw inference`` (batch 1 on the contract's input), ``bare loop`` (the
runtime on --video, headless, no sinks), ``loop + video + masks`` (mp4 and mask PNGs on
their workers), ``loop + viewer`` (one local MJPEG client connected), ``1 / 2 / 4 sources`` (copies of
--video as separate sources on the one backend: total and per-source FPS, peak RSS),
``loop + dashboard`` (the viewer, the per-frame statistics and one client reading the
stream and /stats.json), ``preprocess`` and
its ``OpenCV lower bound``, ``render 1280x720`` and its ``render lower bound`` (one
cv2.addWeighted of two 720p frames), ``encode 1280x720`` (one mp4v frame).

``--host-only MS`` is a measurement tool, not a backend: inference becomes a sleep of MS ms
(no CPU) returning a fixed label map of the contract's size, so the host path is measured as
it runs beside a GPU (33 ms: a 30 FPS engine). numpy + OpenCV (+ the backend's library):
it runs on the Jetson too. The measurements live in edge/benchmarks/; this is the CLI.
With ``--backend tensorrt`` (and no ``--engine``), when the bundle has both an FP16 and an
FP32 engine for this TensorRT and GPU, a second table times each and gives FP16's speed-up.

``--soak N`` is another mode: N frames of --video (looped) through the runtime with the
mp4, mask PNGs and one viewer client, reporting the process's RSS at start, after warm-up
and at the end, then again without the mp4 (edge/benchmarks/soak.py).
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json
import logging
import os
import shutil
import sys
import tempfile

from edge.backends import DEVICES, backend_help, backends, load_backend
from edge.benchmarks.goals import format_ratios
from edge.benchmarks.precisions import compare_precisions, format_comparison
from edge.benchmarks.scenarios import markdown_table, measure
from edge.benchmarks.soak import measure_soak
from edge.benchmarks.standin import HostOnlyStandIn
from edge.sources import SourceURI, scheme_for
from nanoseg import cli
from nanoseg.bundle import Bundle
from nanoseg.errors import NanosegError
from nanoseg.files import check_writable, write_text_for_flag

LOG = logging.getLogger("benchmark")


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    parser.add_argument("--backend", default="auto", choices=backends(), help=backend_help())
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
    parser.add_argument("--soak", type=int, default=None, metavar="N",
                        help="instead of the table above: run N frames of --video (looped) "
                             "with the mp4, mask PNGs and one viewer client, and report the "
                             "process's memory (RSS) at start, after warm-up and at the end; "
                             "then the same without the video writer")
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


def check_video(video):
    """--video's one-line errors before the model loads (the sources' own name --source)."""
    if video is None:
        return
    uri = SourceURI(video)
    if uri.scheme == "file" and not uri.pattern and not os.path.exists(uri.path):
        raise NanosegError("--video file not found: {}".format(uri.path))
    scheme_for(uri, flag="--video")


def main(args):
    cli.setup_logging(args.log_level)
    if args.runs <= 0 or args.warmup < 0:
        raise NanosegError("--runs must be positive and --warmup not negative")
    if args.view_fps <= 0:
        raise NanosegError("--view-fps must be positive, got {:g}".format(args.view_fps))
    if args.json:  # before the measurements, not after them
        check_writable(args.json, "--json")
    if args.soak is not None and (args.soak < 2 or not args.video):
        raise NanosegError("--soak needs 2 or more frames and a --video to loop")
    check_video(args.video)
    backend = open_backend(args)
    folder = tempfile.mkdtemp(prefix="nanoseg-bench-")
    try:
        results, rows = (measure_soak if args.soak else measure)(backend, args, folder)
    finally:
        backend.close()  # also when the video or a measurement fails
        shutil.rmtree(folder, ignore_errors=True)
    comparison = None
    if not args.soak and args.backend == "tensorrt" and args.engine is None and \
            args.host_only is None:
        comparison = compare_precisions(Bundle(args.bundle), args.runs, args.warmup)
        results["fp16_vs_fp32"] = comparison
    print(markdown_table(rows))
    if args.soak:
        if args.json:
            write_text_for_flag(args.json, json.dumps(results, indent=2) + "\n", "--json")
        return 0
    print("")
    print(format_ratios(results["ratios"]))
    if "host_cpu_ms_per_frame" in results:
        print("(host CPU per frame = bare loop process CPU per frame - inference CPU per call "
              "+ render median; of it, decoding --video alone: {:.2f} ms)".format(
                  results["decode_cpu_ms_per_frame"]))
    if comparison:
        print("")
        print(format_comparison(comparison))
    if args.json:
        write_text_for_flag(args.json, json.dumps(results, indent=2) + "\n", "--json")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
