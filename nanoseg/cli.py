"""Helpers shared by every nanoseg command-line script (Python 3.6 compatible).

Scripts are thin: ``parse_args(argv)`` builds the namespace, ``main(args)`` does the work by
calling importable functions, and :func:`run` turns a :class:`NanosegError` into a one-line
``error:`` message with exit status 2 instead of a traceback.
"""
import argparse
import logging
import os
import sys

from nanoseg.errors import NanosegError
from nanoseg.files import write_failure

LOG_FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


def make_parser(description):
    """An ArgumentParser whose --help shows every default."""
    return argparse.ArgumentParser(
        description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)


def add_bundle_arg(parser, required=True):
    """--bundle: the model bundle folder written by train/train.py."""
    parser.add_argument("--bundle", required=required,
                        help="model bundle folder (written by train/train.py --out)")


def add_logging_args(parser):
    group = parser.add_argument_group("logging")
    group.add_argument("--log-level", default="INFO",
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="log verbosity")
    return group


def setup_logging(level="INFO"):
    """Configure the root logger once for a CLI (library code only creates loggers)."""
    logging.basicConfig(level=getattr(logging, str(level).upper(), logging.INFO),
                        format=LOG_FORMAT, datefmt="%H:%M:%S")


def run(main, parse_args, argv=None):
    """Run ``main(parse_args(argv))`` and return a process exit status.

    NanosegError -> ``error: <message>`` on stderr, status 2; so is a write that failed for
    want of room or permission (:func:`nanoseg.files.write_failure`); Ctrl-C -> status 130.
    """
    args = parse_args(argv)
    try:
        result = main(args)
    except NanosegError as exc:
        sys.stderr.write("error: {}\n".format(exc))
        sys.stderr.flush()
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # a full disk or read-only folder met by any library's writer
        message = write_failure(exc)
        if message is None:
            raise
        sys.stderr.write("error: {}\n".format(message))
        sys.stderr.flush()
        return 2
    return int(result or 0)


def repo_root():
    """The repository root (the folder that holds edge/, train/, convert/)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
