"""Several sources on one backend, and the dashboard with one client: the loops behind the
``N sources`` and ``loop + dashboard`` rows, with the process's resident memory sampled
while each runs (the multi-source goal compares it with one source)."""
import json
import socket
import threading
import time
import urllib.request

from edge.benchmarks.stream_client import StreamClient, wait_until_watching
from edge.multisource import MultiStream
from edge.runtime import run_pipeline
from edge.sinks import ViewerSink
from edge.sources import open_source
from edge.stats import LiveStats, StatsSink
from edge.viewer import MjpegViewer
from nanoseg.errors import NanosegError

STATS_POLL = 0.5  # s between the dashboard client's /stats.json requests (as the page's)


def rss_mib():
    """This process's resident memory in MiB (/proc, Linux and the Jetson), or None."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    import resource
    return pages * resource.getpagesize() / (1024.0 * 1024.0)


class RssSampler(object):
    """The highest RSS seen every ``interval`` s on a thread, from start to :meth:`stop`."""

    def __init__(self, interval=0.1):
        self.interval = interval
        self.peak = rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.wait(self.interval):
            value = rss_mib()
            if value is not None:
                self.peak = max(self.peak or 0.0, value)

    def stop(self):
        self._stop.set()
        self._thread.join(2.0)
        return None if self.peak is None else round(self.peak, 1)


def run_sources_loop(backend, video, count, max_frames, sinks=(), monitor=None):
    """The runtime on ``count`` copies of ``video`` (each its own source and decoder); the
    summary with ``per_source_fps`` and ``rss_mib`` (the peak while it ran)."""
    names = ["source{}".format(index) for index in range(count)]
    streams = []
    try:
        for _ in names:
            streams.append(open_source(video))
    except BaseException:
        for stream in streams:
            stream.stop()
        raise
    sampler = RssSampler()
    cpu = time.process_time()
    try:
        summary = run_pipeline(MultiStream(streams, names), backend, list(sinks),
                               max_frames=max_frames, log_every=30.0, monitor=monitor)
    finally:
        summary_rss = sampler.stop()
    frames = max(summary["frames"], 1)
    summary["cpu_ms_per_frame"] = round((time.process_time() - cpu) * 1000.0 / frames, 3)
    summary["rss_mib"] = summary_rss
    elapsed = summary["elapsed_s"] or 1.0
    summary["per_source_fps"] = [round(s["processed"] / elapsed, 3) for s in
                                 summary["sources"]]
    if summary["error"]:
        raise NanosegError("the benchmark loop failed: {}".format(summary["error"]))
    return summary


class DashboardClient(object):
    """One browser stand-in on the dashboard: the page's MJPEG stream, and /stats.json
    fetched every STATS_POLL s as the page's script does."""

    def __init__(self, viewer):
        self.polls = 0
        self._url = viewer.url + "stats.json"
        self._stream = StreamClient(viewer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="bench-stats", daemon=True)
        self._thread.start()

    def _poll(self):
        while not self._stop.wait(STATS_POLL):
            try:
                with urllib.request.urlopen(self._url, timeout=2.0) as response:
                    json.loads(response.read().decode("utf-8"))
                self.polls += 1
            except (OSError, ValueError, socket.timeout):
                continue

    def stop(self):
        self._stop.set()
        self._thread.join(3.0)
        self._stream.stop()
        return self._stream.bytes


def run_dashboard_loop(backend, video, max_frames, view_fps):
    """One source with the viewer, the per-frame statistics and one dashboard client."""
    names = ["source0"]
    live = LiveStats(backend.contract, names, "benchmark")
    viewer = MjpegViewer("127.0.0.1", 0, title="benchmark", sources=names,
                         stats_provider=live.snapshot).start()
    sinks = [ViewerSink(viewer, max_fps=view_fps),
             StatsSink(backend.contract, names, None, live)]
    client = None
    try:
        client = DashboardClient(viewer)
        wait_until_watching(viewer, "benchmark's local dashboard client")
        summary = run_sources_loop(backend, video, 1, max_frames, sinks, monitor=live)
    finally:
        received = client.stop() if client is not None else 0
        viewer.close()
    summary["viewer_bytes"] = received
    summary["stats_polls"] = client.polls
    return summary
