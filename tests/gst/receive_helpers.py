"""Receive and decode nanoseg's GStreamer outputs in a test, always within a time bound.

Frames come out of an appsink pulled with ``try-pull-sample`` (never a blocking read), so a
stream that never arrives ends the wait at its deadline instead of hanging the suite.
"""
import time

import cv2
import numpy as np
from gi.repository import Gst

from edge import gst
from tests.gst.gst_helpers import best_match

DECODE = "rtph264depay ! h264parse ! avdec_h264 ! videoconvert ! video/x-raw, format=BGR"
MIN_PSNR = 30.0


class Receiver(object):
    """A GStreamer pipeline ending in an appsink that keeps every decoded BGR frame."""

    def __init__(self, launch):
        self.pipeline = Gst.parse_launch(
            launch + " ! appsink name=out sync=false max-buffers=10000")
        self.sink = self.pipeline.get_by_name("out")
        self.frames = []

    def start(self):
        self.pipeline.set_state(Gst.State.PLAYING)
        return self

    def pull(self, count, timeout):
        """Collect frames until ``count`` in all or ``timeout`` seconds; all of them so far."""
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline:
            sample = self.sink.emit("try-pull-sample", 100 * Gst.MSECOND)
            if sample is not None:
                self.frames.append(_sample_to_bgr(sample))
        return self.frames

    def stop(self):
        self.pipeline.set_state(Gst.State.NULL)


def _sample_to_bgr(sample):
    caps = sample.get_caps().get_structure(0)
    width, height = caps.get_value("width"), caps.get_value("height")
    buffer = sample.get_buffer()
    ok, info = buffer.map(Gst.MapFlags.READ)
    assert ok, "cannot map a decoded buffer"
    try:
        data = np.frombuffer(info.data, np.uint8)
        stride = data.size // height  # rows may be padded to 4 bytes
        return data.reshape(height, stride)[:, :width * 3].reshape(height, width, 3).copy()
    finally:
        buffer.unmap(info)


def rtp_receiver(port):
    """H.264 RTP from rtp://127.0.0.1:port (what ``--output rtp://`` sends)."""
    return Receiver("udpsrc address=127.0.0.1 port={} buffer-size=4194304 caps=\"{}\" ! "
                    "{}".format(port, gst.RTP_CAPS, DECODE))


def rtsp_receiver(url):
    """An RTSP client (interleaved TCP: no loss on a loaded machine) of ``url``."""
    return Receiver("rtspsrc location=\"{}\" latency=200 protocols=tcp ! {}".format(
        url, DECODE))


def match_frames(received, results):
    """(index of the best-matching result, its PSNR) for each received frame."""
    rendered = [r.rendered for r in results]
    return [best_match(frame, rendered) for frame in received]
