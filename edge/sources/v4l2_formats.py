"""What a USB camera offers (formats, sizes, rates) and which format to capture in.

``v4l2-ctl --list-formats-ext`` (apt v4l-utils) is asked once per open and its output parsed
by :func:`parse_formats`, which reads both its layouts (v4l-utils 1.14 on JetPack 4.6:
``Pixel Format: 'MJPG'``; newer: ``[0]: 'MJPG' (Motion-JPEG, compressed)``). Only discrete
sizes count (what UVC webcams report). :func:`choose_codec` picks the format for
``--input-codec``: ``auto`` takes the cheapest format that gives the asked size at the asked
rate, so a camera whose YUYV gives 9 fps at 720p is read as MJPEG at 30 or 60.
Python 3.6, standard library only.
"""
import collections
import logging
import re
import subprocess

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

Mode = collections.namedtuple("Mode", "codec width height fps")
# V4L2 pixel formats nanoseg can capture -> --input-codec names, cheapest to decode first.
FOURCC_CODECS = collections.OrderedDict([("YUYV", "yuyv"), ("MJPG", "mjpeg"),
                                         ("H264", "h264")])
RATE_SLACK = 0.5  # fps: a camera's 29.97 counts as 30
_FOURCC = re.compile(r"(?:Pixel Format:|\[\d+\]:)\s*'([^']+)'")
_SIZE = re.compile(r"Size:\s*Discrete\s+(\d+)x(\d+)")
_RATE = re.compile(r"Interval:\s*Discrete\s+[\d.]+s\s+\(([\d.]+) fps\)")


def parse_formats(text):
    """``v4l2-ctl --list-formats-ext`` output -> [Mode] for the formats nanoseg can read."""
    modes, fourcc, size = [], None, None
    for line in text.splitlines():
        found = _FOURCC.search(line)
        if found:
            fourcc, size = found.group(1).strip(), None
            continue
        found = _SIZE.search(line)
        if found:
            size = (int(found.group(1)), int(found.group(2)))
            continue
        found = _RATE.search(line)
        if found and size is not None and fourcc in FOURCC_CODECS:
            modes.append(Mode(FOURCC_CODECS[fourcc], size[0], size[1], float(found.group(1))))
    return modes


def list_modes(device, timeout=10):
    """The camera's modes from ``v4l2-ctl``, or None when that tool is missing or fails
    (then nothing is known and the caller falls back to OpenCV's own V4L2 reader)."""
    try:
        proc = subprocess.Popen(["v4l2-ctl", "-d", str(device), "--list-formats-ext"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
    except OSError:
        LOG.info("v4l2-ctl is missing (sudo apt-get install v4l-utils): the formats of %s "
                 "are unknown", device)
        return None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    if proc.returncode != 0:
        LOG.info("v4l2-ctl -d %s failed: %s", device, (err.strip().splitlines() or ["?"])[-1])
        return None
    return parse_formats(out) or None


def describe_modes(modes):
    """``mjpeg 1280x720@60/30, 640x480@30; yuyv 1280x720@9``: what a camera offers."""
    parts = []
    for codec in FOURCC_CODECS.values():
        sizes = collections.OrderedDict()
        for mode in modes:
            if mode.codec == codec:
                sizes.setdefault((mode.width, mode.height), []).append(mode.fps)
        if sizes:
            parts.append("{} {}".format(codec, ", ".join(
                "{}x{}@{}".format(w, h, "/".join("{:g}".format(f) for f in sorted(
                    rates, reverse=True))) for (w, h), rates in sizes.items())))
    return "; ".join(parts)


def choose_codec(modes, width, height, fps, wanted="auto", device="the camera"):
    """The format to capture ``width``x``height`` at ``fps`` in: ``wanted``, or for auto
    the cheapest to decode that gives it (YUYV, then MJPEG, then H.264).

    One-line error naming what the camera offers when nothing gives the asked mode.
    """
    fits = set(mode.codec for mode in modes if (mode.width, mode.height) == (width, height)
               and mode.fps >= fps - RATE_SLACK)
    choices = list(FOURCC_CODECS.values()) if wanted == "auto" else [wanted]
    for codec in choices:
        if codec in fits:
            return codec
    asked = "" if wanted == "auto" else " as {}".format(wanted)
    raise NanosegError("{} cannot give {}x{} at {:g} fps{}; it offers {}: choose one with "
                       "--width/--height/--fps{}".format(
                           device, width, height, fps, asked, describe_modes(modes),
                           "" if wanted == "auto" else "/--input-codec"))
