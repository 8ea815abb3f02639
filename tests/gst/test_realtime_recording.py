"""Recordings of a live source play in real time (edge/pacing.py), for real.

A live RTSP camera on 127.0.0.1 (tests/gst/rtsp_server.py, 30 fps) is processed by a backend
slowed to ~10 FPS, so the writers get one frame in three. The run's own outputs, made by
run_camera.make_sinks from its flags (an H.264 .mkv through GStreamer and --save-video
through OpenCV's writer), must last as long as the run, and hold every frame handed to them
at the slot of its capture time.
"""
import time

import pytest

from edge import run_camera, sources
from edge.pacing import FramePacer
from edge.runtime import run_pipeline
from tests.gst.gst_helpers import (RtspServer, camvid_images, psnr, requires_rtsp_server,
                                   write_video_frames)
from tests.video_helpers import FakeBackend, decode_frames

pytestmark = [pytest.mark.gst, requires_rtsp_server]

RUN_SECONDS = 8.0
INFER_SECONDS = 0.1  # ~10 FPS


class SlowBackend(FakeBackend):
    def infer(self, x):
        time.sleep(INFER_SECONDS)
        return FakeBackend.infer(self, x)


def record_handed(sink):
    """Keep (capture time, frame as written) of every frame handed to ``sink``."""
    handed = []
    write = sink.write

    def recording(result):
        write(result)
        handed.append((result.time, sink._last.copy()))
    sink.write = recording
    return handed


def test_a_live_recording_lasts_as_long_as_the_run_with_every_frame_at_its_time(
        camvid_dir, tmp_path):
    frames, _ = write_video_frames(tmp_path, camvid_images(camvid_dir, 8))
    server = RtspServer(frames, fps=30).start()
    try:
        stream = sources.open_source(server.uri(), stall_timeout=5.0)
        assert stream.live
        args = run_camera.parse_args([
            "--bundle", "unused", "--source", server.uri(), "--headless", "--output",
            str(tmp_path / "live.mkv"), "--save-video", str(tmp_path / "live.avi")])
        sinks = run_camera.make_sinks(args, stream.fps, live=stream.live)
        handed = [record_handed(sink) for sink in sinks]
        summary = run_pipeline(stream, SlowBackend(), sinks, duration=RUN_SECONDS)
    finally:
        server.close()
    assert summary["error"] is None, summary
    wall = summary["elapsed_s"]
    print("run: {} frames in {:.2f} s ({:.1f} FPS)".format(summary["frames"], wall,
                                                         summary["fps"]))
    for sink, frames_in, name in zip(sinks, handed, ("live.mkv", "live.avi")):
        decoded = decode_frames(str(tmp_path / name), limit=5000)
        duration = len(decoded) / sink.fps
        print("{}: {} frames handed, {} in the file at {:g} fps = {:.2f} s".format(
            name, len(frames_in), len(decoded), sink.fps, duration))
        assert len(frames_in) == summary["frames"] > 30
        assert len(frames_in) / sink.fps < 0.6 * wall  # unpaced, it would play too fast
        assert abs(duration - wall) <= 0.05 * wall, (duration, wall)
        pacer, slots = FramePacer(sink.fps), []
        for when, _ in frames_in:
            slots.append(pacer.slots + pacer.held_copies(when))
        assert len(decoded) == pacer.slots
        worst = min(psnr(decoded[slot], image) for slot, (_, image) in zip(slots, frames_in))
        assert worst >= 30.0, worst  # every handed frame is in the file, at its time
