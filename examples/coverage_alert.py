"""Report the frames where one class covers more than a share of the picture.

    python3 examples/coverage_alert.py --bundle runs/nails --source clip.mp4 --class nail \\
        --above 10
    python3 examples/coverage_alert.py --bundle runs/nails --source csi://0 --above 25 \\
        --save-alerts alerts/

One line per frame above the limit (``ALERT frame 12 img_012.jpg: nail 23.41% > 10%``) and
a summary at the end; ``--save-alerts`` also keeps each alert's overlay as a JPEG. A small
app on nanoseg's Python API (docs/api.md): ``nanoseg.load`` -> ``labels`` ->
``class_shares`` -> ``overlay``; frames come from edge.sources.open_source, so a video,
an image folder or a camera URI all work. Python 3.6 syntax (it runs on the Jetson too).
"""
if __package__ in (None, ""):  # run as a script from a checkout: make the repo importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import os
import sys

import cv2

import nanoseg
from edge.sources import open_source
from nanoseg import cli


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    cli.add_bundle_arg(parser)
    parser.add_argument("--source", required=True,
                        help="a video file, an image folder or glob, or a camera URI "
                             "(csi://0, v4l2:///dev/video0, rtsp://...)")
    parser.add_argument("--class", dest="class_name", default=None,
                        help="the class to watch (default: the first after background)")
    parser.add_argument("--above", type=float, default=10.0,
                        help="alert when the class covers more than this percentage")
    parser.add_argument("--backend", default="auto",
                        help="auto, tensorrt, onnxruntime or keras")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after N frames")
    parser.add_argument("--save-alerts", default=None,
                        help="folder for the overlay of every alert frame (JPEG)")
    return parser.parse_args(argv)


def watched_class(seg, name):
    """The class to watch: ``name``, or the first class after background."""
    if name is None:
        return seg.classes[1]
    if name not in seg.classes[1:]:
        raise nanoseg.NanosegError("--class {!r} is not a class of this model: use one of "
                                   "{}".format(name, ", ".join(seg.classes[1:])))
    return name


def frames(stream, max_frames=None):
    """The stream's frames until it ends (or ``max_frames``)."""
    count = 0
    while max_frames is None or count < max_frames:
        frame = stream.get(timeout=1.0)
        if frame is None:
            if stream.finished:
                return
            continue  # a live camera between frames
        count += 1
        yield frame


def main(args):
    if not 0.0 <= args.above < 100.0:
        raise nanoseg.NanosegError("--above must be a percentage in [0, 100), got {:g}".format(
            args.above))
    with nanoseg.load(args.bundle, backend=args.backend) as seg:
        name = watched_class(seg, args.class_name)
        if args.save_alerts:
            os.makedirs(args.save_alerts, exist_ok=True)
        stream = open_source(args.source)
        seen = alerts = 0
        try:
            for frame in frames(stream, args.max_frames):
                seen += 1
                labels = seg.labels(frame.image)
                percent = 100.0 * seg.class_shares(labels)[name]
                if percent <= args.above:
                    continue
                alerts += 1
                print("ALERT frame {} {}: {} {:.2f}% > {:g}%".format(
                    frame.index, frame.name, name, percent, args.above))
                if args.save_alerts:
                    path = os.path.join(args.save_alerts, "{:06d}.jpg".format(frame.index))
                    cv2.imwrite(path, seg.overlay(frame.image, labels))
        finally:
            stream.stop()
        if stream.error:
            raise nanoseg.NanosegError("the source failed: {}".format(stream.error))
    print("{} frames, {} with {} above {:g}%".format(seen, alerts, name, args.above))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
