"""Generate the synthetic nail dataset (flat layout) and, optionally, a demo video.

    python3 tools/make_synthetic.py --out data/synthetic --count 60 --size 192 256 --seed 0 \
        --video data/synthetic.mp4 --frames 90

Re-running with the same parameters reuses the folder; see tools/synthetic.py.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import sys  # noqa: E402

from nanoseg.cli import add_logging_args, make_parser, run, setup_logging  # noqa: E402
from nanoseg.errors import NanosegError  # noqa: E402
from tools.synthetic import make_synthetic_dataset, make_synthetic_video  # noqa: E402


def parse_args(argv=None):
    """Command-line flags (defaults shown by --help)."""
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--out", help="dataset folder to write (images/ + masks/)")
    parser.add_argument("--count", type=int, default=60, help="number of image/mask pairs")
    parser.add_argument("--size", type=int, nargs=2, default=[192, 256],
                        metavar=("H", "W"), help="image height and width")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same files")
    parser.add_argument("--format", default="jpg", choices=["jpg", "png"],
                        help="image file format (masks are always PNG)")
    parser.add_argument("--video", help="also write an mp4 of moving scenes here")
    parser.add_argument("--frames", type=int, default=90, help="video length in frames")
    parser.add_argument("--fps", type=float, default=15.0, help="video frame rate")
    add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    """Write what was asked; print where it went."""
    setup_logging(args.log_level)
    if not args.out and not args.video:
        raise NanosegError("nothing to do: give --out DIR (dataset) and/or --video PATH")
    if args.out:
        info = make_synthetic_dataset(args.out, args.count, tuple(args.size), args.seed,
                                      args.format)
        print("dataset: {} ({} pairs, {}x{}, foreground {:.1%})".format(
            args.out, info["count"], info["size"][0], info["size"][1],
            info["foreground_fraction"]))
    if args.video:
        frames = make_synthetic_video(args.video, args.frames, tuple(args.size), args.seed,
                                      args.fps)
        print("video: {} ({} frames)".format(args.video, frames))
    return 0


if __name__ == "__main__":
    sys.exit(run(main, parse_args))
