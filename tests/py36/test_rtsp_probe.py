"""edge.sources.rtsp_probe against a scripted RTSP camera on 127.0.0.1 (also under Python 3.6).

The camera answers DESCRIBE like an IP camera: 401 with a Basic or Digest challenge until
the right credentials come, 404 for another path. tests/gst/test_rtsp_source.py checks the
same probe against a real gst-rtsp-server.
"""
import base64
import hashlib
import re
import socket
import socketserver
import logging
import threading
import time

import pytest

from edge.sources import rtsp_probe
from nanoseg.errors import NanosegError

USER, PASSWORD, REALM, NONCE = "zoe7", "p@ss word", "IPCAM", "abc123"
SLOW_ANSWER, PROBE_TIMEOUT = 1.5, 0.3  # s: a camera slower than the probe waits
# Answers that may still play through rtspsrc (or that are not RTSP at all).
CANNED = {
    "http": "HTTP/1.1 400 Bad Request\r\n\r\n",
    "redirect": "RTSP/1.0 302 Moved Temporarily\r\nCSeq: 1\r\nLocation: "
                "rtsp://127.0.0.1:1/elsewhere\r\n\r\n",
    "forbidden": "RTSP/1.0 403 Forbidden\r\nCSeq: 1\r\n\r\n",
    "slow": "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 0\r\n\r\n",
}


def md5(text):
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def expected_digest(url):
    return md5("{}:{}:{}".format(md5("{}:{}:{}".format(USER, REALM, PASSWORD)), NONCE,
                                 md5("DESCRIBE:" + url)))


class Camera(socketserver.BaseRequestHandler):
    """One request per connection, answered by the server's ``scheme`` ("basic"/"digest")."""

    def handle(self):
        self.request.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        self.server.requests.append(data.decode("latin-1"))
        self.request.sendall(self.answer(data.decode("latin-1")).encode("latin-1"))

    def answer(self, text):
        if self.server.scheme in CANNED:
            time.sleep(SLOW_ANSWER if self.server.scheme == "slow" else 0)
            return CANNED[self.server.scheme]
        url = text.split()[1]
        if not url.endswith("/live"):
            return "RTSP/1.0 404 Not Found\r\nCSeq: 1\r\n\r\n"
        auth = re.search(r"Authorization: (.*)\r\n", text)
        if self.server.scheme == "basic":
            good = "Basic " + base64.b64encode("{}:{}".format(USER, PASSWORD).encode()).decode()
            challenge = 'Basic realm="{}"'.format(REALM)
        else:
            response = re.search(r'response="(\w+)"', auth.group(1)) if auth else None
            good = auth.group(1) if response and response.group(1) == expected_digest(url) \
                else None
            challenge = 'Digest realm="{}", nonce="{}"'.format(REALM, NONCE)
        if auth and auth.group(1) == good:
            return "RTSP/1.0 200 OK\r\nCSeq: 1\r\nContent-Length: 0\r\n\r\n"
        return "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\nWWW-Authenticate: {}\r\n\r\n".format(
            challenge)


@pytest.fixture(params=["basic", "digest"])
def camera(request):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Camera)
    server.daemon_threads = True
    server.scheme = request.param
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def location(server, path="/live"):
    return "rtsp://127.0.0.1:{}{}".format(server.server_address[1], path)


def test_right_credentials_are_accepted_and_wrong_ones_named(camera):
    assert rtsp_probe.describe(location(camera), USER, PASSWORD, timeout=5).status == 200
    assert "RTSP 200 OK" in rtsp_probe.explain_failure(location(camera), USER, PASSWORD, 5)
    wrong = rtsp_probe.explain_failure(location(camera), USER, "guess", timeout=5)
    assert wrong.startswith("the camera rejected the user name or password (RTSP 401")
    assert "guess" not in wrong and USER not in wrong
    missing = rtsp_probe.explain_failure(location(camera), timeout=5)
    assert missing.startswith("the camera needs credentials (RTSP 401 Unauthorized)")
    assert "Authorization" not in camera.requests[-1]  # no credentials, none sent


def test_credentials_are_sent_only_in_the_scheme_the_camera_asks_for(camera):
    rtsp_probe.describe(location(camera), USER, PASSWORD, timeout=5)
    sent = [re.search(r"Authorization: (\w+)", r) for r in camera.requests]
    schemes = [m.group(1) if m else None for m in sent]
    assert schemes == [None, "Basic" if camera.scheme == "basic" else "Digest"]
    assert all(PASSWORD not in r for r in camera.requests)  # Basic is base64, Digest a hash


def test_a_wrong_path_and_a_missing_server_are_told_apart(camera):
    assert "no stream at /other (RTSP 404 Not Found)" in rtsp_probe.explain_failure(
        location(camera, "/other"), USER, PASSWORD, timeout=5)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = rtsp_probe.explain_failure("rtsp://127.0.0.1:{}/live".format(port), timeout=5)
    assert refused.startswith("no RTSP server answers at 127.0.0.1:{} (".format(port))
    assert rtsp_probe.explain_failure("rtsps://127.0.0.1:{}/live".format(port)) is None


def test_a_server_that_is_not_rtsp_is_named(camera):
    camera.scheme = "http"
    assert "does not speak RTSP" in rtsp_probe.explain_failure(location(camera), timeout=5)
    with pytest.raises(NanosegError, match="does not speak RTSP"):
        rtsp_probe.parse_answer(b"SSH-2.0-OpenSSH_9.2")
    answer = rtsp_probe.parse_answer(b"RTSP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic "
                                     b"realm=x\r\nwww-authenticate: Digest realm=x, nonce=y")
    assert (answer.status, answer.reason) == (401, "Unauthorized")
    assert answer.headers["www-authenticate"] == ["Basic realm=x", "Digest realm=x, nonce=y"]


def test_refusal_is_asked_before_opening_and_lets_an_accepting_camera_through(camera):
    assert rtsp_probe.refusal(location(camera), USER, PASSWORD, timeout=5) is None
    assert "rejected the user name or password" in rtsp_probe.refusal(
        location(camera), USER, "guess", timeout=5)
    assert "no stream at /other" in rtsp_probe.refusal(location(camera, "/other"), USER,
                                                       PASSWORD, timeout=5)
    assert rtsp_probe.refusal("rtsps://127.0.0.1:1/live") is None  # TLS: cannot tell


@pytest.mark.parametrize("scheme, words", [
    ("redirect", "the camera answered RTSP 302 Moved Temporarily"),
    ("forbidden", "the camera answered RTSP 403 Forbidden"),
    ("slow", "accepted the connection but gave no RTSP answer (timed out)")])
def test_answers_that_may_still_play_go_on_to_opencv(camera, scheme, words):
    """rtspsrc follows a 302, a camera may answer only DESCRIBE with 403, a slow one may
    answer rtspsrc in time: none of them may block the open; the words explain a failure."""
    camera.scheme = scheme
    started = time.monotonic()
    assert rtsp_probe.refusal(location(camera), USER, PASSWORD, PROBE_TIMEOUT) is None
    assert time.monotonic() - started < SLOW_ANSWER  # the probe waits its timeout, no more
    assert words in rtsp_probe.explain_failure(location(camera), USER, PASSWORD,
                                               PROBE_TIMEOUT)


def test_no_connection_still_blocks_the_open():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    reason = rtsp_probe.refusal("rtsp://127.0.0.1:{}/live".format(port), timeout=5)
    assert reason.startswith("no RTSP server answers at 127.0.0.1:{} (".format(port))


@pytest.mark.parametrize("uri, host, port", [
    ("rtsp://cam.local/live", "cam.local", 554),
    ("rtsp://[fe80::1]:8554/live?channel=1", "fe80::1", 8554)])
def test_the_request_uri_is_the_uri_as_given(monkeypatch, uri, host, port):
    """No :554 added (a camera may compare the URI), an IPv6 literal keeps its brackets."""
    sent = []

    def fake_request(to_host, to_port, text, timeout):
        sent.append((to_host, to_port, text.split("\r\n")[0]))
        return rtsp_probe.RtspAnswer(200, "OK", {})
    monkeypatch.setattr(rtsp_probe, "request", fake_request)
    assert rtsp_probe.describe(uri).status == 200
    assert sent == [(host, port, "DESCRIBE {} RTSP/1.0".format(uri))]


def test_the_debug_log_holds_no_query_token(camera, caplog):
    secret = location(camera) + "?token=s3cr3t-t0ken"
    with caplog.at_level(logging.DEBUG, logger="edge.sources.rtsp_probe"):
        rtsp_probe.refusal(secret, USER, PASSWORD, timeout=5)
        rtsp_probe.refusal(secret, USER, PASSWORD, timeout=5, shown="rtsp://cam/live?token=***")
    assert "RTSP probe of 127.0.0.1:" in caplog.text and "token=***" in caplog.text
    assert "s3cr3t" not in caplog.text
