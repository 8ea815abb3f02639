"""run_camera's command-line options, in groups (edge/benchmark.py shares the source and
backend ones). Python 3.6, argparse only: parsing, never opening anything."""
import argparse

from edge.backends import DEVICES, backend_help, backends
from edge.collect import UNSURE_BELOW
from edge.gst import DEFAULT_BITRATE_KBPS, OUTPUT_CODECS
from edge.outputs import output_help
from edge.overlay import VISUALIZATIONS
from edge.sources import INPUT_CODECS, RTSP_CODECS, RTSP_TRANSPORTS, STALL_TIMEOUT


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


def add_output_args(parser):
    """Where the overlay, masks, statistics and summary go."""
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
    return out


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
                       help="keep at most N frames per run (per source)")
    group.add_argument("--collect-gap", type=float, default=1.0, metavar="S",
                       help="at least S seconds between frames kept for being unsure or for "
                            "a class change (neighbouring frames are near copies)")
    return group
