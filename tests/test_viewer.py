"""The MJPEG browser viewer and the overlay it shows, with a real HTTP client."""
import os
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from edge import overlay
from edge.contract import Contract, Normalization
from edge.errors import NanosegError
from edge.sinks import Result, ViewerSink
from edge.viewer import BOUNDARY, MjpegViewer


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
