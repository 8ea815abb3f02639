"""The runtime loop on a video, bare, with sinks, or with the viewer and one client."""
import time

from edge.benchmarks.stream_client import StreamClient, wait_until_watching
from edge.runtime import run_pipeline
from edge.sinks import ViewerSink
from edge.sources import open_source
from edge.viewer import MjpegViewer
from nanoseg.errors import NanosegError


def run_loop(backend, video, max_frames, sinks=(), loop=False):
    """The runtime's summary on ``video`` with ``sinks``, plus process CPU ms per frame
    (``loop``: replay the video until ``max_frames``)."""
    stream = open_source(video, loop=loop)
    cpu = time.process_time()
    summary = run_pipeline(stream, backend, list(sinks), max_frames=max_frames,
                           log_every=30.0)
    frames = max(summary["frames"], 1)
    summary["cpu_ms_per_frame"] = round((time.process_time() - cpu) * 1000.0 / frames, 3)
    if summary["error"]:
        raise NanosegError("the benchmark loop failed: {}".format(summary["error"]))
    return summary


def run_viewer_loop(backend, video, max_frames, view_fps):
    """The loop with the MJPEG viewer and one connected local client."""
    viewer = MjpegViewer("127.0.0.1", 0, title="benchmark").start()
    sink = ViewerSink(viewer, max_fps=view_fps)
    client = None
    try:
        client = StreamClient(viewer)
        wait_until_watching(viewer, "benchmark's local viewer client")
        summary = run_loop(backend, video, max_frames, [sink])
    finally:
        if client is not None:
            client.stop()
        viewer.close()
    summary["viewer_bytes"] = client.bytes
    return summary
