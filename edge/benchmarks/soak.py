"""``--soak N``: N frames through the real runtime with every writer on, memory watched.

The video is looped until N frames ran, with the mp4 recording, one mask PNG per frame and
the MJPEG viewer with one local client reading the stream (edge/benchmarks/stream_client.py).
The process's resident set size (RSS) is read at the start, after the warm-up frames (the
allocator, the encoders and OpenCV's buffers have settled by then) and at the last frame
(each a median over the frames just before, see :class:`RssProbe`); what it grew after the
warm-up is what a service running for days would keep growing by.
"""
import collections
import os
import time

import numpy as np

from edge.benchmarks.loops import run_loop
from edge.benchmarks.scenarios import loop_row
from edge.benchmarks.stream_client import StreamClient
from edge.sinks import MaskSink, Sink, VideoSink, ViewerSink
from edge.viewer import MjpegViewer
from nanoseg.errors import NanosegError

STATUS = "/proc/self/status"
WINDOW = 200      # frames whose median RSS is one figure (see RssProbe)


def rss_mb():
    """This process's resident set size in MB (VmRSS), or None where /proc is absent."""
    try:
        with open(STATUS) as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def warmup_frames(frames):
    """The frames before the 'after warm-up' figure: a tenth of the run, 1000 at most."""
    return max(1, min(frames // 10, 1000))


class RssProbe(Sink):
    """An inline sink that reads the RSS at every frame and keeps, for the warm-up's last
    frame and for the last frame, the median over the frames just before.

    One reading would mostly measure how full the writers' queues happen to be: each
    queued 720p result holds about 6 MB (frame, overlay, labels), so a queue of 8 swings
    the RSS by ~50 MB from one frame to the next. The median over a window does not.
    """

    def __init__(self, warmup, frames, window=WINDOW):
        self.warmup = warmup
        self.frames = frames
        self.seen = 0
        self.after_warmup = None
        self.at_end = None
        self._recent = collections.deque(maxlen=max(1, min(window, warmup)))

    def write(self, result):
        self.seen += 1
        self._recent.append(rss_mb())
        if self.seen == self.warmup:
            self.after_warmup = self._median()
        if self.seen >= self.frames:
            self.at_end = self._median()

    def _median(self):
        values = [v for v in self._recent if v is not None]
        return float(np.median(values)) if values else None


def run_soak(backend, video, frames, folder, view_fps):
    """The soak's summary: the runtime's summary plus ``rss_mb`` (start, after warm-up,
    end, growth after warm-up) and the viewer client's byte count."""
    if frames < 2:
        raise NanosegError("--soak needs at least 2 frames, got {}".format(frames))
    start = rss_mb()
    probe = RssProbe(warmup_frames(frames), frames)
    viewer = MjpegViewer("127.0.0.1", 0, title="soak").start()
    sinks = [VideoSink(os.path.join(folder, "soak.mp4"), 30.0),
             MaskSink(os.path.join(folder, "soak-masks")),
             ViewerSink(viewer, max_fps=view_fps), probe]
    client = None
    try:
        client = StreamClient(viewer)
        deadline = time.monotonic() + 5.0
        while not viewer.watching and time.monotonic() < deadline:
            time.sleep(0.01)
        if not viewer.watching:
            raise NanosegError("the soak's local viewer client did not connect")
        summary = run_loop(backend, video, frames, sinks, loop=True)
    finally:
        if client is not None:
            client.stop()
        viewer.close()
    summary["viewer_bytes"] = client.bytes
    growth = None
    if probe.at_end is not None and probe.after_warmup is not None:
        growth = round(probe.at_end - probe.after_warmup, 2)
    summary["rss_mb"] = {"start": start, "after_warmup": probe.after_warmup,
                         "end": probe.at_end, "warmup_frames": probe.warmup,
                         "growth_after_warmup": growth}
    return summary


def soak_rows(summary):
    """The soak's table rows: the loop, then the three RSS figures (in the note column)."""
    rss = summary["rss_mb"]
    rows = [loop_row("soak: loop + video + masks + viewer (1 local client)", summary)]
    for what, value in (("RSS at start", rss["start"]),
                        ("RSS after warm-up ({} frames)".format(rss["warmup_frames"]),
                         rss["after_warmup"]),
                        ("RSS at the end ({} frames)".format(summary["frames"]), rss["end"])):
        rows.append((what, None, None, None, _mb(value)))
    growth = rss["growth_after_warmup"]
    rows.append(("RSS growth after warm-up", None, None, None,
                 "-" if growth is None else "{:+.1f} MB".format(growth)))
    return rows


def _mb(value):
    return "-" if value is None else "{:.1f} MB".format(value)


def measure_soak(backend, args, folder):
    """The benchmark's soak mode: (results dict, table rows)."""
    if not args.video:
        raise NanosegError("--soak needs --video (it is looped until --soak frames ran)")
    summary = run_soak(backend, args.video, args.soak, folder, args.view_fps)
    return {"backend": backend.describe(), "host_only_ms": args.host_only,
            "soak": summary}, soak_rows(summary)
