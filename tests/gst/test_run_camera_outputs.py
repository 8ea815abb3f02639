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

from edge import gst, outputs
from receive_helpers import MIN_PSNR, rtp_receiver, rtsp_receiver
from tests.gst.gst_helpers import best_match
from tests.video_helpers import LineReader, count_frames, decode_frames, default_sigint

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


def rtsp_output():
    """(--output value, URL a client plays) of an RTSP server the run starts on 127.0.0.1."""
    url = "rtsp://127.0.0.1:{}/nanoseg".format(outputs.free_port(kind=socket.SOCK_STREAM))
    return url, url


def assert_rtsp_server_stopped(err, url):
    """RtspServerSink.close() ran RtspServer.stop() on the sink's worker thread, in time."""
    assert "RTSP server {} stopped".format(url) in err, err[-3000:]
    assert "did not end within" not in err, err[-3000:]


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
    rtsp, url = rtsp_output()
    proc = run_camera(edge_python, edge_bundle, nails_images, summary,
                      ["--loop", "--output", str(out), "--output", rtsp])
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
    assert_rtsp_server_stopped(err, url)


def test_end_of_source_finalizes_every_output(edge_python, edge_bundle, nails_images,
                                              tmp_path):
    """mp4 + mkv through GStreamer, RTP and RTSP to receivers here, and --save-video, at once.

    The RTSP client joins once the run's server listens, i.e. a few frames in: it decodes from
    the next key frame on, and from there it must get every frame, the last ones included
    (the server stops on the sink's worker thread only after the writer's EOS).
    """
    port = outputs.free_port()
    rtsp, url = rtsp_output()
    count = len(os.listdir(nails_images))
    receiver = rtp_receiver(port).start()
    client = None
    summary = tmp_path / "summary.json"
    files = [tmp_path / "out.mp4", tmp_path / "out.mkv"]
    proc = run_camera(edge_python, edge_bundle, nails_images, summary,
                      ["--output", str(files[0]), "--output", str(files[1]),
                       "--output", "rtp://127.0.0.1:{}".format(port), "--output", rtsp,
                       "--save-video", str(tmp_path / "software.mp4")])
    stderr = LineReader(proc.stderr)
    try:
        stderr.wait_for("RTSP server: " + url, timeout=120)
        client = rtsp_receiver(url).start()
        received = receiver.pull(count, timeout=120)
        proc.wait(timeout=60)
        streamed = client.pull(count, timeout=5)  # the run ended: what came is all there is
    finally:
        receiver.stop()
        if client is not None:
            client.stop()
        err = finish(proc, stderr)
    assert proc.returncode == 0, err
    data = json.loads(summary.read_text())
    assert data["end_reason"] == "end of source" and data["written"] == count, data
    for path in files + [tmp_path / "software.mp4"]:
        assert count_frames(str(path)) == count, path
    assert len(received) == count
    # every photo differs from the next: no output may repeat a frame instead
    mp4 = decode_frames(str(files[0]))
    for frames in (mp4, decode_frames(str(files[1])), received):
        changes = [mean_change(a, b) for a, b in zip(frames, frames[1:])]
        assert min(changes) > 2.0, changes
    assert "rtp://127.0.0.1:{}: H.264 (x264enc)".format(port) in err
    assert_every_frame_from_a_key_frame_on(streamed, mp4)
    assert_rtsp_server_stopped(err, url)


def assert_every_frame_from_a_key_frame_on(streamed, written):
    """``streamed`` is ``written[first:]``, all of it, ``first`` a key frame; PSNR >= 30 dB."""
    assert streamed, "the RTSP client decoded no frame"
    matches = [best_match(frame, written) for frame in streamed]
    first = matches[0][0]
    assert first % gst.DEFAULT_KEY_INTERVAL == 0, matches
    assert [index for index, _ in matches] == list(range(first, len(written))), matches
    assert min(score for _, score in matches) >= MIN_PSNR, matches
    print("RTSP client: frames {}-{} of {}, worst PSNR {:.1f} dB".format(
        first, matches[-1][0], len(written), min(score for _, score in matches)))
