"""edge.sources' RTSP source against a real RTSP server on 127.0.0.1.

tests/gst/rtsp_server.py (gst-rtsp-server) serves camvid-mini street photos as a looping
H.264 stream from its own process, so a test can kill, restart or freeze it like a real
camera. The client is the product's: open_source("rtsp://...") -> rtspsrc pipeline ->
OpenCV's GStreamer backend -> SourceStream (reconnect, stall watchdog).
"""
import os
import re
import select
import subprocess
import sys
import time

import cv2
import pytest

from edge import sources
from edge.sources import rtsp_probe
from nanoseg.errors import NanosegError
from tests.gst.gst_helpers import (HERE, RtspServer, best_match, camvid_images,
                                   requires_rtsp_server, wait_until, write_video_frames)

pytestmark = [pytest.mark.gst, requires_rtsp_server]

USER = "operator"
PASSWORD = "h@ck me!42"         # what the server knows
ENCODED = "h%40ck%20me%2142"    # the same in a URI
FRAME_TIMEOUT = 10.0            # s for any one frame (the first needs a key frame)
MIN_PSNR_DB = 30.0


@pytest.fixture(scope="module")
def video(camvid_dir, tmp_path_factory):
    """(frames pattern for the server, the BGR frames it serves): 8 camvid photos, 320x240."""
    folder = tmp_path_factory.mktemp("rtsp-video")
    return write_video_frames(folder, camvid_images(camvid_dir, 8))


@pytest.fixture
def serve(video):
    """serve(**options) -> a started RtspServer; every one is killed and reaped at the end."""
    servers = []

    def start(**options):
        server = RtspServer(video[0], **options)
        servers.append(server)
        return server.start()
    yield start
    for server in servers:
        server.close()


@pytest.fixture
def streams():
    """Streams a test opens (append them): stopped at the end, also when the test fails."""
    opened = []
    yield opened
    for stream in opened:
        stream.stop()


def next_frame(stream, after=None, timeout=FRAME_TIMEOUT):
    """The next frame (captured after monotonic time ``after``), or None within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = stream.get(timeout=0.5)
        if frame is not None and (after is None or frame.time > after):
            return frame
    return None


def reconnect_delays(caplog):
    return [float(m.group(1)) for m in (re.search(r"reconnect attempt \d+/\d+ in ([\d.]+) s",
                                                  r.getMessage()) for r in caplog.records) if m]


def test_frames_arrive_decoded_at_the_served_size_and_content(serve, streams, video):
    server = serve()
    stream = sources.open_source(server.uri(), stall_timeout=5.0)
    streams.append(stream)
    assert stream.live and stream.description == server.uri()
    matches = []
    for _ in range(12):
        frame = next_frame(stream)
        assert frame is not None, "no frame from the RTSP server"
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype.name == "uint8"
        matches.append(best_match(frame.image, video[1]))
    worst = min(score for _, score in matches)
    assert worst >= MIN_PSNR_DB, matches
    assert len(set(index for index, _ in matches)) >= 3, matches  # a moving video, not a still


def test_basic_auth_credentials_open_the_stream(serve, streams, video):
    server = serve(user=USER, password=PASSWORD)
    stream = sources.open_source(server.uri(USER, ENCODED))
    streams.append(stream)
    frame = next_frame(stream)
    assert frame is not None and best_match(frame.image, video[1])[1] >= MIN_PSNR_DB
    assert PASSWORD not in stream.description and ENCODED not in stream.description


def never_opened(*args):
    raise AssertionError("OpenCV was asked to open a stream the camera refuses (it can hang)")


def test_a_wrong_password_is_one_line_naming_the_redacted_uri_and_the_fix(serve, monkeypatch):
    server = serve(user=USER, password=PASSWORD)
    monkeypatch.setattr(cv2, "VideoCapture", never_opened)
    with pytest.raises(NanosegError) as wrong:
        sources.open_source(server.uri(USER, "not-it"))
    message = str(wrong.value)
    assert "\n" not in message and "not-it" not in message
    assert message.startswith("cannot open rtsp://***:***@127.0.0.1:{}/cam: ".format(server.port))
    assert "rejected the user name or password (RTSP 401" in message
    assert "fix the credentials in the URI" in message
    with pytest.raises(NanosegError, match=r"needs credentials \(RTSP 401.*use rtsp://user:"):
        sources.open_source(server.uri())


def test_digest_credentials_open_the_stream_and_the_probe_answers_digest_too(serve, streams):
    """A camera that accepts Digest only: rtspsrc logs in; so does the probe's own DESCRIBE."""
    server = serve(user=USER, password=PASSWORD, digest=True)
    stream = sources.open_source(server.uri(USER, ENCODED))
    streams.append(stream)
    assert next_frame(stream) is not None
    location = server.uri()
    assert "(RTSP 200 OK)" in rtsp_probe.explain_failure(location, USER, PASSWORD)
    with pytest.raises(NanosegError, match=r"rejected the user name or password \(RTSP 401"):
        sources.open_source(server.uri(USER, "not-it"))


def test_no_server_and_a_wrong_path_are_told_apart(serve, monkeypatch):
    server = serve()
    monkeypatch.setattr(cv2, "VideoCapture", never_opened)
    with pytest.raises(NanosegError, match=r"no stream at /nope \(RTSP 404"):
        sources.open_source(server.uri(path="/nope"))
    port = server.port
    server.kill()
    with pytest.raises(NanosegError, match=r"no RTSP server answers at 127\.0\.0\.1:{} "
                                           r"\(Connection refused\)".format(port)):
        sources.open_source("rtsp://127.0.0.1:{}/cam".format(port))


def test_a_killed_server_that_restarts_is_reconnected_with_back_off(serve, streams, caplog):
    caplog.set_level("INFO")
    server = serve()
    stream = sources.open_source(server.uri(), reconnect_attempts=10, backoff=0.3,
                                 stall_timeout=3.0)
    streams.append(stream)
    assert next_frame(stream) is not None
    server.kill()
    assert wait_until(lambda: len(reconnect_delays(caplog)) >= 2, 20.0), \
        "the stream did not notice the lost server"
    restarted = time.monotonic()
    server.start()  # the same port
    frame = next_frame(stream, after=restarted, timeout=20.0)
    assert frame is not None, "no frame after the server came back"
    assert stream.reconnects >= 1 and stream.error is None and not stream.finished
    delays = reconnect_delays(caplog)
    assert delays[:2] == [0.3, 0.6], delays   # exponential back-off between failed attempts
    assert any("reconnect 1/10 failed: cannot open" in r.getMessage() and
               "no RTSP server answers" in r.getMessage() for r in caplog.records)


def test_the_stall_watchdog_fires_on_a_frozen_server_and_frames_flow_after(serve, streams,
                                                                          caplog):
    caplog.set_level("INFO")
    server = serve()
    stream = sources.open_source(server.uri(), reconnect_attempts=5, backoff=0.2,
                                 stall_timeout=1.5)
    streams.append(stream)
    assert next_frame(stream) is not None
    server.freeze()
    try:
        frozen = time.monotonic()
        assert wait_until(lambda: stream.stalls >= 1, 15.0), "the watchdog did not fire"
        waited = time.monotonic() - frozen
    finally:
        server.thaw()
    assert waited >= 1.0  # not before stall_timeout (less the frames already buffered)
    assert any("no frame from {} for 1.5 s".format(server.uri()) in r.getMessage()
               for r in caplog.records)
    thawed = time.monotonic()
    assert next_frame(stream, after=thawed, timeout=20.0) is not None
    assert stream.reconnects >= 1 and stream.error is None


def open_stream_command(uri, frames):
    return [sys.executable, os.path.join(HERE, "open_stream.py"), "--source", uri, "--frames",
            str(frames), "--log-level", "INFO", "--reconnect-attempts", "5"]


GST_WARNINGS_ENV = dict(os.environ, GST_DEBUG="2", GST_DEBUG_NO_COLOR="1")


def run_through_a_restart(server, uri, frames=25):
    """open_stream.py reading ``frames`` frames while ``server`` is killed and restarted once
    (GStreamer warns about the lost connection, the stream reconnects with the credentials):
    (exit status, everything it printed)."""
    process = subprocess.Popen(open_stream_command(uri, frames), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env=GST_WARNINGS_ENV)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while not any(line.startswith("frame ") for line in lines) and \
                time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 0.5)
            line = process.stdout.readline().decode("utf-8", "replace") if ready else ""
            if ready and not line:
                break
            lines.append(line)
        server.restart()
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return process.returncode, "".join(lines) + rest.decode("utf-8", "replace")


def test_the_password_never_appears_in_any_output(serve):
    """Not in our logs, not in the error, not in GStreamer's or OpenCV's own warnings."""
    server = serve(user=USER, password=PASSWORD)
    status, good = run_through_a_restart(server, server.uri(USER, ENCODED))
    assert status == 0, good
    assert len(re.findall(r"^frame \d+ 320x240$", good, re.M)) == 25, good
    assert "opened rtsp://***:***@127.0.0.1" in good, good
    assert "reconnected to rtsp://***:***@127.0.0.1" in good, good
    assert re.search(r"WARN +rtspsrc ", good), good  # GStreamer's own warnings were captured
    bad = subprocess.run(open_stream_command(server.uri(USER, "wr0ng" + ENCODED), 3),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=GST_WARNINGS_ENV, timeout=60)
    output = bad.stdout.decode("utf-8", "replace")
    assert bad.returncode == 2, output
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "rejected the user name or password" in errors[0], output
    assert "cannot open rtsp://***:***@127.0.0.1:{}/cam".format(server.port) in errors[0]
    for text in (good, output):
        for secret in (PASSWORD, ENCODED, "h@ck", "me!42", "ck%20me"):
            assert secret not in text, text


@pytest.mark.parametrize("transport", ["tcp", "auto"])
def test_a_tcp_only_camera_streams_over_tcp_and_auto_falls_back_to_it(serve, streams, video,
                                                                      transport):
    server = serve(tcp_only=True)
    stream = sources.open_source(server.uri(), rtsp_transport=transport)
    streams.append(stream)
    frame = next_frame(stream, timeout=20.0)  # auto: after rtspsrc's UDP SETUP is refused
    assert frame is not None, "no frame over {}".format(transport)
    assert best_match(frame.image, video[1])[1] >= MIN_PSNR_DB


def test_udp_only_against_a_tcp_only_camera_does_not_open(serve):
    server = serve(tcp_only=True)
    started = time.monotonic()
    with pytest.raises(NanosegError, match="cannot open rtsp://127.0.0.1:{}/cam".format(
            server.port)):
        sources.open_source(server.uri(), rtsp_transport="udp", reconnect_attempts=0)
    assert time.monotonic() - started < 30.0
