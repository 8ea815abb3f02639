"""Open a --source the way edge/run_camera.py does and print one line per frame.

A test driver for tests/gst: the same source flags (edge.run_camera.add_source_args), the
same logging and the same ``error: ...`` exit 2 as the real CLI, without a model, so a test
can capture everything a user would see when a camera opens or fails (GStreamer included).

    python3 tests/gst/open_stream.py --source rtsp://user:pass@127.0.0.1:8554/cam --frames 5
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import logging
import sys

from nanoseg import cli
from nanoseg.errors import NanosegError
from edge.run_camera import add_source_args, source_options
from edge.sources import open_source

LOG = logging.getLogger("open_stream")


def parse_args(argv=None):
    parser = cli.make_parser(__doc__.strip().splitlines()[0])
    add_source_args(parser)
    parser.add_argument("--frames", type=int, default=5, help="frames to read, then stop")
    parser.add_argument("--frame-timeout", type=float, default=10.0,
                        help="seconds to wait for each frame")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    stream = open_source(args.source, args.width, args.height, args.fps, args.flip,
                         args.latency, loop=args.loop,
                         reconnect_attempts=args.reconnect_attempts,
                         stall_timeout=args.stall_timeout, rtsp_codec=args.rtsp_codec,
                         **source_options(args))
    try:
        for _ in range(args.frames):
            frame = stream.get(timeout=args.frame_timeout)
            if frame is None:
                raise NanosegError("no frame from {} within {:.0f} s".format(
                    stream.description, args.frame_timeout))
            print("frame {} {}x{}".format(frame.index, frame.image.shape[1],
                                          frame.image.shape[0]), flush=True)
    finally:
        stream.stop()
    LOG.info("read %d frames from %s", args.frames, stream.description)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
