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

import argparse
import logging
import os
import signal
import sys
import threading

from nanoseg import cli
from edge.backends import DEVICES, backend_help, backends, load_backend
from nanoseg.errors import NanosegError
from edge.gst import DEFAULT_BITRATE_KBPS
from edge.multisource import MultiStream, check_templates, for_source, source_names
from edge.outputs import OutputURI, open_output, output_help
from edge.runtime import format_summary, run_pipeline, write_summary
from edge.sinks import MaskSink, ViewerSink, WindowSink
from edge.sources import RTSP_CODECS, STALL_TIMEOUT, SourceURI, open_source
from edge.stats import LiveStats, StatsSink, resolve_ignored
from edge.viewer import MjpegViewer, check_port
from nanoseg.bundle import Bundle
from nanoseg.files import check_writable

LOG = logging.getLogger("run_camera")


class _Sources(argparse.Action):
    """--source, repeatable: ``args.sources`` lists every one, ``args.source`` is the first."""

    def __call__(self, parser, namespace, values, option_string=None):
        sources = list(getattr(namespace, "sources", None) or []) + [values]
        namespace.sources = sources
        namespace.source = sources[0]


def sources_of(args):
    """Every --source given (``args.sources``), or the one ``args.source``."""
    return list(getattr(args, "sources", None) or [args.source])


def add_source_args(parser):
    """--source and the camera options (shared with edge/benchmark.py)."""
    group = parser.add_argument_group("source")
    group.add_argument("--source", required=True, action=_Sources,
                       help="csi://N, v4l2:///dev/videoN or a device index, rtsp://..., a "
                            "video file, an image folder or a glob; repeat it for several "
                            "sources on one model (outputs then need {name} or {index})")
    group.add_argument("--width", type=int, default=1280, help="camera capture width")
    group.add_argument("--height", type=int, default=720, help="camera capture height")
    group.add_argument("--fps", type=int, default=30, help="camera frame rate")
    group.add_argument("--flip", type=int, default=0,
                       help="CSI nvvidconv flip-method: 0 none, 1 rotate 90 counterclockwise, "
                            "2 rotate 180, 3 rotate 90 clockwise, 4 mirror, 5 upper-right "
                            "diagonal, 6 vertical flip, 7 upper-left diagonal (1/3/5/7 give "
                            "height x width frames)")
    group.add_argument("--latency", type=int, default=200, help="RTSP jitter buffer (ms)")
    group.add_argument("--rtsp-codec", default="h264", choices=RTSP_CODECS,
                       help="RTSP video codec (GStreamer depayloader and decoder)")
    group.add_argument("--loop", action="store_true", help="replay a video file or folder")
    group.add_argument("--reconnect-attempts", type=int, default=5,
                       help="reconnects (exponential back-off) before a lost camera stops "
                            "the run")
    group.add_argument("--stall-timeout", type=float, default=STALL_TIMEOUT,
                       help="live sources: seconds without a frame that count as a lost "
                            "camera (reconnect); 0 turns the watchdog off")
    return group


def add_backend_args(parser):
    """--backend / --device / --engine (shared with edge/benchmark.py)."""
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", default="auto", choices=backends(), help=backend_help())
    group.add_argument("--device", default="cpu", choices=DEVICES,
                       help="ONNX Runtime execution provider")
    group.add_argument("--engine", default=None,
                       help="a TensorRT engine file (default: the bundle's matching one)")
    return group


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    add_source_args(parser)
    add_backend_args(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window")
    out.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of classes")
    out.add_argument("--save-video", default=None,
                     help="write the overlay to this .mp4 with OpenCV's software writer")
    out.add_argument("--output", action="append", default=[], metavar="URI",
                     help=output_help())
    out.add_argument("--output-bitrate", type=int, default=DEFAULT_BITRATE_KBPS,
                     help="H.264 bitrate of --output in kbit/s")
    out.add_argument("--video-fps", type=float, default=None,
                     help="frame rate of --save-video and --output (default: the source's, "
                          "else 30)")
    out.add_argument("--save-masks", default=None, help="folder for label-id PNGs")
    out.add_argument("--view-port", type=int, default=None,
                     help="serve an MJPEG browser viewer on this port")
    out.add_argument("--view-host", default="127.0.0.1",
                     help="viewer address (0.0.0.0 exposes it to the network)")
    out.add_argument("--view-fps", type=float, default=15.0,
                     help="most JPEGs per second the viewer encodes (only while a client "
                          "is connected)")
    out.add_argument("--summary", default=None, help="write the run summary JSON here")
    out.add_argument("--stats", default=None, metavar="FILE.jsonl",
                     help="one JSON line per processed frame (source, frame, capture time, "
                          "FPS, class shares, per-stage ms, non-finite flag), flushed per "
                          "line")
    out.add_argument("--ignore-class", action="append", default=[], metavar="NAME",
                     help="a class not drawn and not counted in the class shares "
                          "(repeatable)")
    run = parser.add_argument_group("run")
    run.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    run.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    run.add_argument("--log-every", type=float, default=5.0,
                     help="seconds between progress lines")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def source_sinks(args, fps, name, index):
    """The outputs of one source, ``{name}`` / ``{index}`` in their paths and URIs filled in."""
    sinks = []
    if args.save_video:  # OpenCV's writer whatever the extension, as its help says
        sinks.append(open_output(for_source(args.save_video, name, index), fps,
                                 scheme="video-file", flag="--save-video"))
    for uri in args.output:
        sinks.append(open_output(for_source(uri, name, index), fps, args.output_bitrate))
    if args.save_masks:
        sinks.append(MaskSink(for_source(args.save_masks, name, index)))
    return sinks


def make_sinks(args, stream_fps):
    """The sinks the flags ask for (the window unless --headless): each source's outputs
    (given only that source's frames when there are several), then the viewer and window,
    which show every source.

    If one cannot be opened, those already opened are closed (the viewer frees its port).
    """
    sinks = []
    names = source_names(sources_of(args))
    try:
        fps = args.video_fps or stream_fps or 30.0
        for index, name in enumerate(names):
            for sink in source_sinks(args, fps, name, index):
                if len(names) > 1:
                    sink.source_index = index  # edge.stats.takes: this source's frames only
                    sink.source_name = name  # in its log lines and the summary
                sinks.append(sink)
        if args.view_port is not None:
            viewer = MjpegViewer(args.view_host, args.view_port, title=args.bundle,
                                 sources=names).start()
            sinks.append(ViewerSink(viewer, max_fps=args.view_fps))
        if not args.headless:
            sinks.append(WindowSink(source_names=names))
    except BaseException:
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # the first error is the one to report
                LOG.warning("closing %s failed: %s", type(sink).__name__, exc)
        raise
    return sinks


def install_stop_handler(stop_event):
    """SIGTERM (systemd, docker stop, kill) -> a clean stop, like Ctrl-C but quieter.

    Only the first signal stops: the first SIGINT raises KeyboardInterrupt (it also ends a
    model load), the first SIGTERM sets ``stop_event``. Any later SIGINT or SIGTERM, and any
    signal once ``stop_event`` is set (run_pipeline sets it before it drains the outputs,
    also at the end of a source), only logs "already stopping": a Ctrl-C must not abandon
    the drain of the outputs (that would leave an unplayable video). Returns a function that puts the previous
    handlers back (main() is also called in-process, by tests).
    """
    stopping, previous = [], {}

    def handler(signum, _frame):
        if stopping or stop_event.is_set():  # set too once the pipeline drains its outputs
            LOG.warning("signal %d: already stopping (finishing the outputs)", signum)
            return
        stopping.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        LOG.warning("signal %d: stopping cleanly", signum)
        stop_event.set()
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, handler)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            # not when Ctrl-C is ignored (nohup, a background job)
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler)

    def restore():
        for signum, old_handler in previous.items():
            signal.signal(signum, old_handler)
    return restore


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
    if args.view_port is not None:
        check_port(args.view_port)
    if getattr(args, "ignore_class", None):  # before the model loads: a typo is found now
        resolve_ignored(args.ignore_class, Bundle(args.bundle).contract())
    check_templates(per_source_outputs(args), len(sources_of(args)))
    for flag, path, folder in written_paths(args):
        check_writable(path, flag, folder=folder)


def per_source_outputs(args):
    """(flag, value) of every output each source writes its own of."""
    return [("--save-video", args.save_video), ("--save-masks", args.save_masks)] + \
        [("--output", uri) for uri in args.output]


def written_paths(args):
    """(flag, path, is a folder) of every file or folder the run writes: checked before the
    model and the source open, so a typo is not found after the whole run."""
    paths = []
    for index, name in enumerate(source_names(sources_of(args))):
        if args.save_video:
            paths.append(("--save-video", for_source(args.save_video, name, index), False))
        for uri in args.output:
            parsed = OutputURI(for_source(uri, name, index))
            if parsed.scheme == "file":
                paths.append(("--output", parsed.path, False))
        if args.save_masks:
            paths.append(("--save-masks", for_source(args.save_masks, name, index), True))
    if args.summary:
        paths.append(("--summary", args.summary, False))
    if getattr(args, "stats", None):
        paths.append(("--stats", args.stats, False))
    return paths


def prefer_rtsp_over_tcp(source, environ=None):
    """FFmpeg RTSP over TCP (no lost UDP packets) unless the user chose otherwise.

    Used only when OpenCV has no GStreamer. OpenCV 4.1.1's VideoCapture takes no per-capture
    options: FFmpeg reads them from OPENCV_FFMPEG_CAPTURE_OPTIONS when a capture opens. That
    is process-wide state, so the CLI (which owns the process) sets it, never edge/sources.
    """
    environ = os.environ if environ is None else environ
    if SourceURI(source).scheme in ("rtsp", "rtsps"):
        environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp")


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
                                       rtsp_codec=args.rtsp_codec))
    except BaseException:
        for stream in streams:
            stream.stop()
        raise
    return MultiStream(streams, source_names(sources_of(args)))


def stats_sinks(args, backend, sinks, ignored):
    """The --stats writer and the dashboard's numbers (a LiveStats the viewer serves)."""
    live = None
    for sink in sinks:
        if isinstance(sink, ViewerSink):
            live = LiveStats(backend.contract, source_names(sources_of(args)), args.bundle,
                             ignored)
            sink.viewer.stats_provider = live.snapshot
    if not (live or args.stats):
        return [], None
    return [StatsSink(backend.contract, source_names(sources_of(args)), args.stats, live,
                      ignored)], live


def run_source(args, backend, stop_event):
    """Open the sources and the sinks, run the pipeline; the summary dict."""
    ignored = resolve_ignored(args.ignore_class, backend.contract)
    stream = open_sources(args)
    sinks = []
    try:
        sinks = make_sinks(args, stream.fps)
        extra, live = stats_sinks(args, backend, sinks, ignored)
        sinks += extra
    except BaseException:
        for sink in sinks:
            sink.close()
        stream.stop()
        raise
    return run_pipeline(stream, backend, sinks, args.alpha, args.max_frames, args.duration,
                        stop_event, args.log_every, hidden=ignored, monitor=live)


def run_with_backend(args, stop_event):
    """Load the backend, run the sources through it, close it; the summary dict."""
    for source in sources_of(args):
        prefer_rtsp_over_tcp(source)
    backend = load_backend(args.bundle, args.backend, args.device, args.engine)
    try:
        return run_source(args, backend, stop_event)
    finally:
        backend.close()


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
        if args.summary:
            save_summary(summary, args.summary)
    finally:
        restore_handlers()
    if summary["error"]:
        raise NanosegError(summary["error"])
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
