"""edge/run_camera.py --output for real: the nails bundle on the nails photos, H.264 out.

Run by the Python in .cache/venv-gst (apt's GStreamer OpenCV + onnxruntime) with the bundle
the desktop suite exported. A GStreamer mp4 is playable only after EOS: a SIGINT or a SIGTERM
in the middle of a run, and the end of the source, must all deliver it.
"""
import json
import os
import signal
import socket
import subprocess

import numpy as np
import pytest

from receive_helpers import decode_file, rtp_receiver
from tests.video_helpers import LineReader, count_frames, default_sigint

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN_CAMERA = os.path.join(ROOT, "edge", "run_camera.py")


def run_camera(edge_python, bundle, source, summary, extra):
    argv = [edge_python, RUN_CAMERA, "--bundle", bundle, "--source", source, "--headless",
            "--backend", "onnxruntime", "--summary", str(summary), "--log-every", "0.5"]
    return subprocess.Popen(argv + list(extra), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, universal_newlines=True, cwd=ROOT,
                            preexec_fn=default_sigint)


def mean_change(a, b):
    """Mean absolute difference of two frames (0.0: a repeated frame)."""
    return float(np.mean(np.abs(a.astype(np.int16) - b.astype(np.int16))))


def finish(proc, stderr, timeout=60):
    """Wait (bounded) for the run to end; its stderr."""
    try:
        proc.wait(timeout=timeout)
        return stderr.rest(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("signum, reason", [(signal.SIGINT, "interrupted (Ctrl-C)"),
                                            (signal.SIGTERM, "stopped")])
def test_a_signal_mid_run_still_gives_a_playable_mp4(edge_python, edge_bundle, nails_images,
                                                      tmp_path, signum, reason):
    out, summary = tmp_path / "live.mp4", tmp_path / "summary.json"
    proc = run_camera(edge_python, edge_bundle, nails_images, summary,
                      ["--loop", "--output", str(out)])
    stderr = LineReader(proc.stderr)
    try:
        stderr.wait_for("H.264 (x264enc)", timeout=120)
        stderr.wait_for("frames,", timeout=60)  # a progress line: well inside the run
        proc.send_signal(signum)
    finally:
        err = finish(proc, stderr)
    assert proc.returncode == 0, err
    data = json.loads(summary.read_text())
    assert data["end_reason"] == reason and data["error"] is None, data
    assert count_frames(str(out)) == data["written"] > 0, err[-3000:]


def test_end_of_source_finalizes_every_output(edge_python, edge_bundle, nails_images,
                                              tmp_path):
    """mp4 + mkv through GStreamer, RTP to a receiver here, and --save-video, all at once."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    count = len(os.listdir(nails_images))
    receiver = rtp_receiver(port).start()
    summary = tmp_path / "summary.json"
    files = [tmp_path / "out.mp4", tmp_path / "out.mkv"]
    proc = run_camera(edge_python, edge_bundle, nails_images, summary,
                      ["--output", str(files[0]), "--output", str(files[1]),
                       "--output", "rtp://127.0.0.1:{}".format(port),
                       "--save-video", str(tmp_path / "software.mp4")])
    stderr = LineReader(proc.stderr)
    try:
        received = receiver.pull(count, timeout=120)
    finally:
        receiver.stop()
        err = finish(proc, stderr)
    assert proc.returncode == 0, err
    data = json.loads(summary.read_text())
    assert data["end_reason"] == "end of source" and data["written"] == count, data
    for path in files + [tmp_path / "software.mp4"]:
        assert count_frames(str(path)) == count, path
    assert len(received) == count
    # every photo differs from the next: no output may repeat a frame instead
    for frames in (decode_file(str(files[0])), decode_file(str(files[1])), received):
        changes = [mean_change(a, b) for a, b in zip(frames, frames[1:])]
        assert min(changes) > 2.0, changes
    assert "rtp://127.0.0.1:{}: H.264 (x264enc)".format(port) in err
