"""Live segmentation from a camera, stream, video or image folder with a model bundle.

    python3 edge/run_camera.py --bundle runs/nails --source csi://0
    python3 edge/run_camera.py --bundle runs/nails --source clip.mp4 --headless \\
        --save-video out.mp4 --save-masks masks/ --summary run.json
    python3 edge/run_camera.py --bundle runs/nails --source 0 --headless --view-port 8080
    python3 edge/run_camera.py --bundle runs/nails --source csi://0 --headless \\
        --output overlay.mp4 --output rtsp://@:8554/nanoseg
    python3 edge/run_camera.py --bundle runs/nails --source csi://0 --source csi://1 \\
        --headless --save-masks masks/{name} --stats stats.jsonl --view-port 8080

Frames are preprocessed with the bundle's contract (the training function), run through the
chosen backend and drawn as an overlay; SIGTERM and Ctrl-C stop cleanly (the video is
finalized, the summary written; a GStreamer --output gets its EOS, so the file plays with
every frame written).
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import logging
import os
import sys
import threading

from nanoseg import cli, memory
from edge.backends import load_backend
from edge.camera_args import (add_backend_args, add_collect_args, add_output_args,
                              add_source_args, sources_of)
from edge.camera_outputs import (collect_sinks, make_sinks, per_source_outputs,
                                 shared_requests, source_requests, stats_sinks,
                                 written_paths)
from nanoseg.errors import NanosegError
from edge.gst_capture import parse_sensor_mode
from edge.multisource import MultiStream, check_templates, source_names
from edge.run_summary import format_summary, write_summary
from edge.runtime import run_pipeline
from edge.sources import SourceURI, open_source
from edge.sources.flip import check_flip
from edge.stats import resolve_ignored
from edge.stop_signals import install_stop_handler
from edge.viewer import check_port
from nanoseg.bundle import Bundle
from nanoseg.files import check_writable

__all__ = ["add_backend_args", "add_source_args", "check_args", "main", "make_sinks",
           "parse_args", "prefer_rtsp_over_tcp", "shared_requests", "source_options",
           "source_requests", "written_paths"]

LOG = logging.getLogger("run_camera")


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    add_source_args(parser)
    add_backend_args(parser)
    add_output_args(parser)
    add_collect_args(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    run.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    run.add_argument("--log-every", type=float, default=5.0,
                     help="seconds between progress lines")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def check_args(args):
    if args.max_frames is not None and args.max_frames <= 0:
        raise NanosegError("--max-frames must be positive, got {}".format(args.max_frames))
    if args.duration is not None and args.duration <= 0:
        raise NanosegError("--duration must be positive, got {}".format(args.duration))
    if args.view_fps <= 0:
        raise NanosegError("--view-fps must be positive, got {}".format(args.view_fps))
    if not 0.0 <= args.alpha <= 1.0:
        raise NanosegError("--alpha must be in [0, 1], got {}".format(args.alpha))
    if args.reconnect_attempts < 0:
        raise NanosegError("--reconnect-attempts must be 0 or more, got {}".format(
            args.reconnect_attempts))
    if args.output_bitrate <= 0:
        raise NanosegError("--output-bitrate must be positive (kbit/s), got {}".format(
            args.output_bitrate))
    if args.stall_timeout < 0:
        raise NanosegError("--stall-timeout must be 0 (off) or more seconds, got {}".format(
            args.stall_timeout))
    if args.video_fps is not None and args.video_fps <= 0:
        raise NanosegError("--video-fps must be positive, got {:g}".format(args.video_fps))
    if args.sensor_mode:
        parse_sensor_mode(args.sensor_mode)
    check_flip(args.flip)
    if args.view_port is not None:
        check_port(args.view_port)
    if getattr(args, "ignore_class", None):  # before the model loads: a typo is found now
        resolve_ignored(args.ignore_class, Bundle(args.bundle).contract())
    check_templates(per_source_outputs(args), len(sources_of(args)))
    for flag, path, folder in written_paths(args):
        check_writable(path, flag, folder=folder)


def source_options(args):
    """The camera and stream flags beyond open_source's positional ones."""
    return {"sensor_mode": args.sensor_mode, "input_codec": args.input_codec,
            "rtsp_transport": args.rtsp_transport}


def prefer_rtsp_over_tcp(source, environ=None, transport="auto"):
    """FFmpeg RTSP over TCP (no lost UDP packets) unless the user chose otherwise
    (``--rtsp-transport udp``, or OPENCV_FFMPEG_CAPTURE_OPTIONS already set).

    Used only when OpenCV has no GStreamer. OpenCV 4.1.1's VideoCapture takes no per-capture
    options: FFmpeg reads them from OPENCV_FFMPEG_CAPTURE_OPTIONS when a capture opens. That
    is process-wide state, so the CLI (which owns the process) sets it, never edge/sources.
    """
    environ = os.environ if environ is None else environ
    if SourceURI(source).scheme in ("rtsp", "rtsps"):
        environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;{}".format(
            "udp" if transport == "udp" else "tcp"))


def open_sources(args):
    """Every --source opened and started, as one MultiStream (those opened are stopped
    when a later one fails)."""
    streams = []
    try:
        for source in sources_of(args):
            streams.append(open_source(source, args.width, args.height, args.fps, args.flip,
                                       args.latency, loop=args.loop,
                                       reconnect_attempts=args.reconnect_attempts,
                                       stall_timeout=args.stall_timeout,
                                       rtsp_codec=args.rtsp_codec, **source_options(args)))
    except BaseException:
        for stream in streams:
            stream.stop()
        raise
    return MultiStream(streams, source_names(sources_of(args)))


def run_source(args, backend, stop_event):
    """Open the sources and the sinks, run the pipeline; the summary dict."""
    ignored = resolve_ignored(args.ignore_class, backend.contract)
    stream = open_sources(args)
    sinks = []
    try:
        sinks = collect_sinks(args, backend.contract)
        sinks += make_sinks(args, stream.fps, live=stream.live)
        extra, live = stats_sinks(args, backend, sinks, ignored)
        sinks += extra
    except BaseException:
        for sink in sinks:
            sink.close()
        stream.stop()
        raise
    return run_pipeline(stream, backend, sinks, args.alpha, args.max_frames, args.duration,
                        stop_event, args.log_every, visualize=args.visualize,
                        hidden=ignored, monitor=live)


def run_with_backend(args, stop_event):
    """Load the backend, run the sources through it, close it; the summary dict (with the
    memory figures around the model's load: a Nano's 4 GB are shared with the GPU)."""
    for source in sources_of(args):
        prefer_rtsp_over_tcp(source, transport=args.rtsp_transport)
    before = memory.snapshot()
    backend = load_backend(args.bundle, args.backend, args.device, args.engine)
    loaded = memory.snapshot()
    LOG.info("%s", memory.format_change(before, loaded, "memory as the model loaded"))
    try:
        summary = run_source(args, backend, stop_event)
    finally:
        backend.close()
    summary["memory"] = memory.load_report(before, loaded, memory.snapshot())
    return summary


def save_summary(summary, path):
    """Write --summary (already in the log); when the run failed too, its error is the one
    the CLI ends with and the failed write is logged."""
    try:
        write_summary(summary, path)
    except NanosegError as exc:
        if not summary["error"]:
            raise
        LOG.error("%s", exc)


def main(args):
    cli.setup_logging(args.log_level)
    check_args(args)
    stop_event = threading.Event()
    restore_handlers = install_stop_handler(stop_event)
    try:
        summary = run_with_backend(args, stop_event)
        for line in format_summary(summary):
            LOG.info("%s", line)
        if summary.get("memory"):
            LOG.info("%s", memory.format_report(summary["memory"]))
        if args.summary:
            save_summary(summary, args.summary)
    finally:
        restore_handlers()
    if summary["error"]:
        raise NanosegError(summary["error"])
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
