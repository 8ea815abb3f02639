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

from nanoseg import cli, memory
from edge.backends import DEVICES, backend_help, backends, load_backend
from edge.collect import UNSURE_BELOW, CollectSink
from nanoseg.errors import NanosegError
from edge.gst import DEFAULT_BITRATE_KBPS, OUTPUT_CODECS
from edge.gst_capture import parse_sensor_mode
from edge.multisource import MultiStream, check_templates, for_source, source_names
from edge.outputs import open_output, output_help, shows_every_source, written_path
from edge.runtime import format_summary, run_pipeline, write_summary
from edge.sinks import ViewerSink
from edge.sources import (INPUT_CODECS, RTSP_CODECS, RTSP_TRANSPORTS, STALL_TIMEOUT, SourceURI,
                          open_source)
from edge.sources.flip import check_flip
from edge.stats import LiveStats, StatsSink, resolve_ignored
from edge.overlay import VISUALIZATIONS
from edge.viewer import check_port
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
                       help="csi://N, v4l2:///dev/videoN or a device index, rtsp://..., "
                            "rtp://@:PORT, a video file, an image folder or a glob; repeat it "
                            "for several sources on one model (outputs then need {name} or "
                            "{index})")
    group.add_argument("--width", type=int, default=1280, help="camera capture width")
    group.add_argument("--height", type=int, default=720, help="camera capture height")
    group.add_argument("--fps", type=int, default=30, help="camera frame rate")
    group.add_argument("--flip", type=int, default=0,
                       help="every source (CSI: nvvidconv flip-method, on the GPU): 0 none, 1 "
                            "rotate 90 counterclockwise, 2 rotate 180, 3 rotate 90 clockwise, "
                            "4 mirror, 5 upper-right diagonal, 6 vertical flip, 7 upper-left "
                            "diagonal (1/3/5/7 give height x width frames)")
    group.add_argument("--sensor-mode", default=None, metavar="WxH[@FPS]",
                       help="CSI: capture at this sensor mode (e.g. 3264x2464@21, the "
                            "IMX219's full field of view) and scale to --width/--height on "
                            "the GPU (default: the sensor mode is --width/--height/--fps)")
    group.add_argument("--input-codec", default="auto", choices=INPUT_CODECS,
                       help="USB camera format: auto picks the cheapest one the camera gives "
                            "at --width/--height/--fps (MJPEG and H.264 are decoded in "
                            "hardware on a Jetson)")
    group.add_argument("--latency", type=int, default=200, help="RTSP jitter buffer (ms)")
    group.add_argument("--rtsp-codec", default="h264", choices=RTSP_CODECS,
                       help="RTSP and rtp:// video codec (GStreamer depayloader and decoder)")
    group.add_argument("--rtsp-transport", default="auto", choices=RTSP_TRANSPORTS,
                       help="RTSP transport: tcp never loses a packet (no smeared frames); "
                            "auto lets rtspsrc try UDP first (FFmpeg: TCP)")
    group.add_argument("--loop", type=int, nargs="?", const=-1, default=0, metavar="N",
                       help="replay a video file or folder N more times (-1 or the bare "
                            "flag: forever)")
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


def add_collect_args(parser):
    """--collect and its triggers (edge/collect.py)."""
    group = parser.add_argument_group("collecting frames to label (edge/collect.py)")
    group.add_argument("--collect", default=None, metavar="DIR",
                       help="keep frames worth labelling in DIR/images + DIR/masks (the "
                            "prediction as a pre-label) + DIR/collected.csv: when the model "
                            "is unsure, a class appears or disappears, or every N seconds")
    group.add_argument("--collect-uncertain", type=float, default=0.2, metavar="F",
                       help="keep a frame when more than this share of its pixels has a top "
                            "probability below {:g} (1: off)".format(UNSURE_BELOW))
    group.add_argument("--collect-every", type=float, default=None, metavar="N",
                       help="also keep a frame every N seconds")
    group.add_argument("--collect-max", type=int, default=200, metavar="N",
                       help="keep at most N frames per run")
    group.add_argument("--collect-gap", type=float, default=1.0, metavar="S",
                       help="at least S seconds between frames kept for being unsure or for "
                            "a class change (neighbouring frames are near copies)")
    return group


def collect_sinks(args, contract):
    """[the --collect sink], or [] without --collect (it holds nothing to close)."""
    if not args.collect:
        return []
    return [CollectSink(args.collect, contract, SourceURI(args.source).shown,
                       args.collect_uncertain, args.collect_every, args.collect_max,
                       args.collect_gap)]


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    add_source_args(parser)
    add_backend_args(parser)
    out = parser.add_argument_group("output")
    out.add_argument("--headless", action="store_true", help="no window")
    out.add_argument("--alpha", type=float, default=0.5, help="overlay opacity of classes")
    out.add_argument("--visualize", default="overlay", choices=VISUALIZATIONS,
                     help="what the outputs show: the frame with the classes over it, or "
                          "the class colours alone (mask)")
    out.add_argument("--save-video", default=None,
                     help="write the overlay to this .mp4 with OpenCV's software writer")
    out.add_argument("--output", action="append", default=[], metavar="URI",
                     help=output_help().replace("%", "%%"))  # argparse formats help
    out.add_argument("--output-bitrate", type=int, default=DEFAULT_BITRATE_KBPS,
                     help="H.264/H.265 bitrate of --output in kbit/s")
    out.add_argument("--output-codec", default="h264", choices=OUTPUT_CODECS,
                     help="codec of the encoded --output files and streams (h265: "
                          "nvv4l2h265enc on a Jetson, else x265enc)")
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
    add_collect_args(parser)
    run = parser.add_argument_group("run")
    run.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    run.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    run.add_argument("--log-every", type=float, default=5.0,
                     help="seconds between progress lines")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def make_sinks(args, stream_fps, live=False):
    """The sinks the flags ask for (the window unless --headless): each source's outputs
    (given only that source's frames when there are several), then the viewer and window,
    which show every source. ``live``: the sources are cameras or streams, so recordings
    hold frames to play in real time (edge/pacing.py).

    If one cannot be opened, those already opened are closed (the viewer frees its port).
    """
    sinks = []
    names = source_names(sources_of(args))
    try:
        fps = args.video_fps or stream_fps or 30.0
        names = source_names(sources_of(args))
        fps = args.video_fps or stream_fps or 30.0

        def open_one(uri, scheme, flag):
            return open_output(uri, fps, args.output_bitrate, scheme=scheme, flag=flag,
                               codec=args.output_codec, realtime=live, title=args.bundle,
                               view_fps=args.view_fps, sources=names)
        for index, name in enumerate(names):
            for uri, scheme, flag in source_requests(args):
                sink = open_one(for_source(uri, name, index), scheme, flag)
                if len(names) > 1:
                    sink.source_index = index  # edge.stats.takes: this source's frames only
                    sink.source_name = name  # in its log lines and the summary
                sinks.append(sink)
        for uri, scheme, flag in shared_requests(args):
            sinks.append(open_one(uri, scheme, flag))
    except BaseException:
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:  # the first error is the one to report
                LOG.warning("closing %s failed: %s", type(sink).__name__, exc)
        raise
    return sinks


def source_requests(args):
    """(URI, row or None, flag) of the outputs each source writes its own of, in one family
    (edge/outputs/): the --output URIs, and the older flags as the rows they are aliases of;
    ``{name}`` / ``{index}`` still unfilled."""
    requests = []
    if args.save_video:  # OpenCV's writer whatever the extension, as its help says
        requests.append((args.save_video, "video-file", "--save-video"))
    requests += [(uri, None, "--output") for uri in args.output
                 if not shows_every_source(uri)]
    if args.save_masks:
        requests.append(("masks://" + args.save_masks, None, "--save-masks"))
    return requests


def shared_requests(args):
    """(URI, row or None, flag) of the outputs that show every source at once: the browser
    viewer and the window."""
    requests = [(uri, None, "--output") for uri in args.output if shows_every_source(uri)]
    if args.view_port is not None:
        requests.append(("http://{}:{}/".format(args.view_host, args.view_port), None,
                         "--view-port"))
    if not args.headless:
        requests.append(("display://0", None, "--output"))
    return requests


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


def per_source_outputs(args):
    """(flag, value) of every output each source writes its own of."""
    return [("--save-video", args.save_video), ("--save-masks", args.save_masks)] + \
        [("--output", uri) for uri in args.output if not shows_every_source(uri)]


def written_paths(args):
    """(flag, path, is a folder) of every file or folder the run writes: checked before the
    model and the source open, so a typo is not found after the whole run."""
    paths = []
    for index, name in enumerate(source_names(sources_of(args))):
        for uri, scheme, flag in source_requests(args):
            uri = for_source(uri, name, index)
            where = (uri, False) if scheme is not None else written_path(uri)
            if where is not None:
                paths.append((flag, where[0], where[1]))
    if args.summary:
        paths.append(("--summary", args.summary, False))
    if getattr(args, "stats", None):
        paths.append(("--stats", args.stats, False))
    if getattr(args, "collect", None):
        paths.append(("--collect", args.collect, True))
    return paths


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
