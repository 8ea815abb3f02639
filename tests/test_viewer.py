"""The MJPEG browser viewer, the window and video sinks, the overlay, with a real HTTP client."""
import json
import logging
import os
import socket
import struct
import sys
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from edge import overlay, sinks
from nanoseg import platform_info
from nanoseg.contract import Contract
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError
from edge.render_thread import RenderThread
from edge.stage_timing import StageTimer
from edge.sinks import Result, VideoSink, ViewerSink, WindowSink
from edge.viewer import BACKLOG, BOUNDARY, MjpegViewer
from tests.video_helpers import count_frames


def _contract():
    return Contract.create(64, 64, ["car", "person"], "softmax",
                           Normalization.named("scale"), colors=[(255, 0, 0), (0, 0, 255)])


@pytest.fixture
def camvid_frame(camvid_dir):
    name = sorted(os.listdir(os.path.join(camvid_dir, "val")))[0]
    return cv2.imread(os.path.join(camvid_dir, "val", name), cv2.IMREAD_COLOR)


@pytest.fixture
def viewer():
    view = MjpegViewer("127.0.0.1", 0, title="test").start()
    yield view
    view.close()


def _publisher(sink, image, stop):
    """Publish ``image`` every 50 ms (a running pipeline) until ``stop`` is set."""
    labels = np.zeros(image.shape[:2], np.uint8)
    while not stop.is_set():
        result = Result(0, "f", image, labels)
        result.rendered = image
        sink.write(result)
        stop.wait(0.05)


def _read_part(stream):
    """One multipart part from a urllib response: (headers dict, body bytes)."""
    line = stream.readline()
    while line.strip() == b"":
        line = stream.readline()
    assert line.strip() == ("--" + BOUNDARY).encode("ascii")
    headers = {}
    while True:
        line = stream.readline().strip()
        if not line:
            break
        key, value = line.decode("ascii").split(":", 1)
        headers[key.strip().lower()] = value.strip()
    return headers, stream.read(int(headers["content-length"]))


def test_stream_serves_decodable_jpegs_to_a_real_client(viewer, camvid_frame):
    stop = threading.Event()
    thread = threading.Thread(target=_publisher, args=(ViewerSink(viewer), camvid_frame, stop))
    thread.start()
    try:
        with urllib.request.urlopen(viewer.url + "stream.mjpg", timeout=10) as response:
            assert response.headers["Content-Type"] == \
                "multipart/x-mixed-replace; boundary=" + BOUNDARY
            for _ in range(2):  # two consecutive parts: it really streams
                headers, body = _read_part(response)
                assert headers["content-type"] == "image/jpeg"
                image = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
                assert image.shape == camvid_frame.shape
                assert np.abs(image.astype(int) - camvid_frame).mean() < 8  # JPEG q80
        with urllib.request.urlopen(viewer.url + "frame.jpg", timeout=10) as response:
            assert response.headers["Content-Type"] == "image/jpeg"
            assert cv2.imdecode(np.frombuffer(response.read(), np.uint8), 1) is not None
    finally:
        stop.set()
        thread.join()


def test_index_page_and_unknown_path(viewer):
    with urllib.request.urlopen(viewer.url, timeout=10) as response:
        page = response.read().decode("utf-8")
    assert '<img src="/stream.mjpg"' in page
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(viewer.url + "secret", timeout=10)
    assert info.value.code == 404


def test_viewer_binds_localhost_by_default_and_reports_busy_ports(viewer):
    assert viewer.host == "127.0.0.1" and viewer.port > 0
    assert MjpegViewer().host == "127.0.0.1"
    with pytest.raises(NanosegError, match="--view-port {} on 127.0.0.1 cannot be opened".format(
            viewer.port)):
        MjpegViewer("127.0.0.1", viewer.port).start()


def test_ports_outside_0_to_65535_are_one_line_errors_before_any_socket():
    for port in (99999, 65536, -1):
        with pytest.raises(NanosegError) as info:
            MjpegViewer("127.0.0.1", port)
        assert str(info.value) == \
            "--view-port must be 1-65535 (0: any free port), got {}".format(port)


def _reset(sock):
    """Close with SO_LINGER 0: the peer gets a TCP RST, as from a crashed or killed client."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_client_that_resets_its_connection_is_one_debug_line_without_a_traceback(
        viewer, caplog, capfd):
    """Reset before its request, and while waiting for /frame.jpg (the reply hits the RST)."""
    caplog.set_level(logging.DEBUG, logger="edge.viewer")
    first = socket.create_connection(("127.0.0.1", viewer.port), timeout=5)
    time.sleep(0.1)  # the server is reading the request line
    _reset(first)
    _wait_for(lambda: len([r for r in caplog.records if " left " in r.getMessage()]) == 1)
    second = socket.create_connection(("127.0.0.1", viewer.port), timeout=5)
    second.sendall(b"GET /frame.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
    _wait_for(lambda: viewer.watching)
    _reset(second)
    viewer.publish(b"\xff" * 100000)
    _wait_for(lambda: len([r for r in caplog.records if " left " in r.getMessage()]) == 2)
    time.sleep(0.2)  # anything else the handlers would log
    left = [r for r in caplog.records if " left " in r.getMessage()]
    assert [r.levelno for r in left] == [logging.DEBUG] * 2
    assert "Connection reset by peer" in left[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "Traceback" not in capfd.readouterr().err


def test_an_idle_client_is_dropped_after_the_idle_timeout():
    view = MjpegViewer("127.0.0.1", 0, idle_timeout=0.5).start()
    try:
        silent = socket.create_connection(("127.0.0.1", view.port), timeout=10)
        start = time.monotonic()
        assert silent.recv(1024) == b""  # the server closed it
        assert time.monotonic() - start < 5
        silent.close()
    finally:
        view.close()


def test_a_stream_client_that_stops_reading_is_dropped(camvid_frame):
    """Its socket buffers fill, the server's write blocks: the idle timeout ends it."""
    view = MjpegViewer("127.0.0.1", 0, idle_timeout=0.5).start()
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        stuck.connect(("127.0.0.1", view.port))
        stuck.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: x\r\n\r\n")
        _wait_for(lambda: view.watching)
        deadline = time.monotonic() + 15
        while view.watching and time.monotonic() < deadline:
            view.publish(os.urandom(1 << 20))  # never read: the buffers fill
            time.sleep(0.05)
        assert not view.watching
    finally:
        stuck.close()
        view.close()


def _accept_queue(port):
    """Connections waiting in the listening socket's accept queue (Linux's /proc/net/tcp)."""
    with open("/proc/net/tcp") as handle:
        for line in handle:
            fields = line.split()
            if fields[1].endswith(":{:04X}".format(port)) and fields[3] == "0A":  # LISTEN
                return int(fields[4].split(":")[1], 16)
    raise AssertionError("no listening socket on port {}".format(port))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net/tcp")
def test_many_clients_connecting_at_once_wait_in_the_backlog_and_are_served(viewer):
    """While the server is busy, BACKLOG clients queue (Python's default queue holds 5; the
    kernel drops the others' handshakes), then all get the page."""
    gate = threading.Event()
    viewer._server.verify_request = lambda request, address: gate.wait(20) or True
    clients = []
    try:
        for _ in range(BACKLOG):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", viewer.port))
            clients.append(client)
        time.sleep(0.5)
        assert _accept_queue(viewer.port) >= BACKLOG - 1  # one is held by verify_request
        gate.set()
        for client in clients:
            client.settimeout(10)
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        for client in clients:
            assert client.recv(64).startswith(b"HTTP/1.0 200 ")
    finally:
        gate.set()
        for client in clients:
            client.close()


def test_overlay_tints_classes_with_contract_colours_and_keeps_background(camvid_frame):
    contract = _contract()
    palette = overlay.bgr_palette(contract)
    assert tuple(palette[1]) == (0, 0, 255) and tuple(palette[2]) == (255, 0, 0)  # RGB->BGR
    labels = np.zeros(camvid_frame.shape[:2], np.uint8)
    labels[200:260, 100:200] = 1
    labels[300:340, 300:360] = 2
    out = overlay.blend(camvid_frame, labels, palette, alpha=1.0)
    assert (out[labels == 1] == (0, 0, 255)).all() and (out[labels == 2] == (255, 0, 0)).all()
    np.testing.assert_array_equal(out[labels == 0], camvid_frame[labels == 0])
    half = overlay.blend(camvid_frame, labels, palette, alpha=0.5)
    expected = (camvid_frame[250, 150].astype(int) + (0, 0, 255)) / 2.0
    assert np.abs(half[250, 150] - expected).max() <= 1
    shown = overlay.render(camvid_frame, labels, contract, palette, 0.5, 12.5,
                           [("infer", 40.0)])
    assert shown.shape == camvid_frame.shape
    assert not np.array_equal(shown[:50, :200], camvid_frame[:50, :200])  # stats drawn
    assert not np.array_equal(shown[50:110, -120:], camvid_frame[50:110, -120:])  # legend


def test_index_page_escapes_the_title():
    title = 'runs/<script>alert("x")</script>&co'
    view = MjpegViewer("127.0.0.1", 0, title=title).start()
    try:
        with urllib.request.urlopen(view.url, timeout=10) as response:
            page = response.read().decode("utf-8")
    finally:
        view.close()
    assert "<script>" not in page
    assert "runs/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;co" in page


def test_window_is_created_drawn_and_destroyed_on_its_own_worker_thread(monkeypatch):
    """HighGUI wants one thread per window: lazily created at the first frame, destroyed
    at the end, always on the window's worker (it shows the latest frame)."""
    calls = []

    def recorder(name):
        def call(*args):
            calls.append((name, threading.current_thread().name))
            return -1
        return call
    for name in ("namedWindow", "imshow", "waitKey", "destroyWindow"):
        monkeypatch.setattr(cv2, name, recorder(name))
    monkeypatch.setattr(sinks, "window_unavailable_reason", lambda: None)
    window = WindowSink("test")
    assert calls == []  # nothing before the first frame, nothing on this thread
    contract = _contract()
    render = RenderThread([window], contract, StageTimer()).start()
    frame = np.zeros((48, 64, 3), np.uint8)
    for index in range(3):
        assert render.put(Result(index, "f", frame, np.zeros((48, 64), np.uint8)),
                          threading.Event())
    render.finish()
    names = [name for name, _ in calls]
    worker = render.sinks[0]
    assert worker.delivery == "latest" and worker.sink is window
    assert names.count("namedWindow") == 1
    assert names.count("imshow") == 3 - worker.superseded >= 1  # the last frame is shown
    assert names.index("destroyWindow") > names.index("imshow")
    assert set(thread for _, thread in calls) == {"sink-WindowSink"}
    assert render.error is None and render.written == 3


def test_window_needs_a_gui_build_and_a_display():
    """Both checked when the sink is made (before any frame), as one line naming the fix."""
    if platform_info.opencv_has_gui():
        assert "no display" in sinks.window_unavailable_reason(environ={}, platform="linux")
        assert sinks.window_unavailable_reason(environ={"DISPLAY": ":0"},
                                               platform="linux") is None
    else:
        with pytest.raises(NanosegError) as info:
            WindowSink()
        assert str(info.value).startswith("cannot open a window: this OpenCV ")
        assert "headless build: use --headless" in str(info.value)


def test_video_sink_falls_back_to_the_next_codec(tmp_path):
    frame = np.full((48, 64, 3), 90, np.uint8)
    result = Result(0, "f", frame, np.zeros((48, 64), np.uint8))
    result.rendered = frame
    out = str(tmp_path / "fallback.mp4")
    sink = VideoSink(out, 10.0, fourccs=("ZZZZ", "mp4v"))  # no encoder has ZZZZ
    for _ in range(3):
        sink.write(result)
    sink.close()
    assert sink.fourcc == "mp4v" and count_frames(out) == 3
    assert VideoSink(str(tmp_path / "x.avi")).fourccs[0] == "MJPG"
    nothing = VideoSink(str(tmp_path / "none.mp4"), fourccs=("ZZZZ", "YYYY"))
    with pytest.raises(NanosegError, match="none of the encoders ZZZZ/YYYY"):
        nothing.write(result)


def test_each_source_has_its_stream_the_assets_are_served_and_other_paths_are_404():
    view = MjpegViewer("127.0.0.1", 0, sources=["left", "right"]).start()
    try:
        with urllib.request.urlopen(view.url, timeout=10) as response:
            page = response.read().decode("utf-8")
        assert '<img src="/stream.mjpg"' in page and '<img src="/stream/1.mjpg"' in page
        for path, kind in (("dashboard.js", "application/javascript"),
                           ("dashboard.css", "text/css")):
            with urllib.request.urlopen(view.url + path, timeout=10) as response:
                assert response.headers["Content-Type"].startswith(kind)
        with urllib.request.urlopen(view.url + "stats.json", timeout=10) as response:
            names = [s["name"] for s in json.loads(response.read().decode("utf-8"))["sources"]]
        assert names == ["left", "right"]
        view.publish(b"jpeg of right", source=1)
        assert view.boards[1].wait_next(0)[1] == b"jpeg of right"
        assert view.boards[0].wait_next(0, timeout=0.1)[1] is None
        for path in ("stream/2.mjpg", "frame/9.jpg", "static/dashboard.html"):
            with pytest.raises(urllib.error.HTTPError) as info:
                urllib.request.urlopen(view.url + path, timeout=10)
            assert info.value.code == 404
    finally:
        view.close()
