"""``--soak N``: N frames through the real runtime with every writer on, memory watched.

The video is looped until N frames ran, with the mp4 recording, one mask PNG per frame and
the MJPEG viewer with one local client reading the stream (edge/benchmarks/stream_client.py).
The process's resident set size (RSS) is read at the start, after the warm-up frames (the
allocator, the encoders and OpenCV's buffers have settled by then) and at the last frame
(each a median over the frames just before, see :class:`RssProbe`); what it grew after the
warm-up is what a service running for days would keep growing by.

The soak then runs again without the video writer: an mp4's muxer (FFmpeg's mov) keeps one
index entry per frame in memory until the file is closed (~70 bytes a frame, measured with
cv2.VideoWriter alone), which grows with the recording's length by design; the two growth
figures and their difference tell it apart from the rest of the loop.
"""
import collections
import os

import numpy as np

from edge.benchmarks.loops import run_loop
from edge.benchmarks.scenarios import loop_row
from edge.benchmarks.stream_client import StreamClient, wait_until_watching
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


def run_soak(backend, video, frames, folder, view_fps, record=True):
    """The soak's summary: the runtime's summary plus ``rss_mb`` (start, after warm-up,
    end, growth after warm-up) and the viewer client's byte count (``record``: with the mp4
    recording)."""
    if frames < 2:
        raise NanosegError("--soak needs at least 2 frames, got {}".format(frames))
    start = rss_mb()
    probe = RssProbe(warmup_frames(frames), frames)
    viewer = MjpegViewer("127.0.0.1", 0, title="soak").start()
    name = "soak" if record else "soak-no-video"
    sinks = [VideoSink(os.path.join(folder, name + ".mp4"), 30.0)] if record else []
    sinks += [MaskSink(os.path.join(folder, name + "-masks")),
              ViewerSink(viewer, max_fps=view_fps), probe]
    client = None
    try:
        client = StreamClient(viewer)
        wait_until_watching(viewer, "soak's local viewer client")
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


def soak_rows(summary, record=True):
    """One soak's table rows: the loop, then the three RSS figures and the growth (in the
    note column); ``record``: the soak with the mp4 recording."""
    rss = summary["rss_mb"]
    label = "soak: loop + video + masks + viewer (1 local client)" if record else \
        "soak again without the video writer: loop + masks + viewer (1 local client)"
    tail = "" if record else ", no video writer"
    rows = [loop_row(label, summary)]
    for what, value in (("RSS at start", rss["start"]),
                        ("RSS after warm-up ({} frames)".format(rss["warmup_frames"]),
                         rss["after_warmup"]),
                        ("RSS at the end ({} frames)".format(summary["frames"]), rss["end"])):
        rows.append((what + tail, None, None, None, _mb(value)))
    rows.append(("RSS growth after warm-up" + tail, None, None, None,
                 _growth(rss["growth_after_warmup"])))
    return rows


def recording_rows(with_video, without_video):
    """The growth the mp4 recording adds: the soak's growth minus the one without it."""
    a = with_video["rss_mb"]["growth_after_warmup"]
    b = without_video["rss_mb"]["growth_after_warmup"]
    share = None if a is None or b is None else round(a - b, 2)
    return [("RSS growth of the mp4 recording (difference)", None, None, None,
             _growth(share))]


def _growth(value):
    return "-" if value is None else "{:+.1f} MB".format(value)


def _mb(value):
    return "-" if value is None else "{:.1f} MB".format(value)


def measure_soak(backend, args, folder):
    """The benchmark's soak mode: (results dict, table rows)."""
    if not args.video:
        raise NanosegError("--soak needs --video (it is looped until --soak frames ran)")
    summary = run_soak(backend, args.video, args.soak, folder, args.view_fps)
    bare = run_soak(backend, args.video, args.soak, folder, args.view_fps, record=False)
    rows = soak_rows(summary) + soak_rows(bare, record=False) + recording_rows(summary, bare)
    return {"backend": backend.describe(), "host_only_ms": args.host_only,
            "soak": summary, "soak_without_video": bare}, rows
