"""Why an RTSP camera will not (or did not) open: a DESCRIBE over a plain socket.

OpenCV only says "could not open" (GStreamer's reason, e.g. "Unauthorized", goes to stderr
as a warning, FFmpeg's nowhere), so nanoseg asks the camera itself: no answer means no
server at that address, 401 a wrong (or missing) user name or password, 404 a wrong path;
the answer becomes the one-line error. It asks *before* each open (:func:`refusal`), because
OpenCV's GStreamer backend can wait forever on a stream the camera refuses, and again after
a failed one (:func:`explain_failure`). Credentials answer the camera's challenge (Digest
MD5 or Basic), as rtspsrc and FFmpeg do. Nothing here logs or returns the password.
Python 3.6, standard library only.
"""
import base64
import hashlib
import logging
import re
import socket

from urllib.parse import urlsplit

from edge.errors import NanosegError

LOG = logging.getLogger(__name__)

RTSP_PORT = 554
PROBE_TIMEOUT = 3.0  # s for connecting and for the answer: a camera on the LAN answers in ms
MAX_HEADER_BYTES = 65536
CREDENTIALS_HINT = ("rtsp://user:password@host[:port]/path, with @ : / % in them "
                    "percent-encoded like %40")


class RtspAnswer(object):
    """The status line and headers (lower-case names) of one RTSP response."""

    def __init__(self, status, reason, headers):
        self.status = status
        self.reason = reason
        self.headers = headers


def parse_answer(data):
    """An :class:`RtspAnswer` from the bytes of a response head; NanosegError if not RTSP."""
    lines = data.decode("latin-1").split("\r\n")
    match = re.match(r"RTSP/\d\.\d (\d{3}) ?(.*)", lines[0])
    if not match:
        raise NanosegError("the server at that address does not speak RTSP (it answered "
                           "{!r})".format(lines[0][:60]))
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), []).append(value.strip())
    return RtspAnswer(int(match.group(1)), match.group(2).strip(), headers)


def request(host, port, text, timeout=PROBE_TIMEOUT):
    """Send one RTSP request and return the :class:`RtspAnswer` (OSError: no connection)."""
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.settimeout(timeout)
        conn.sendall(text.encode("latin-1"))
        data = b""
        while b"\r\n\r\n" not in data and len(data) < MAX_HEADER_BYTES:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    if not data:
        raise OSError("the connection closed without an answer")
    return parse_answer(data.split(b"\r\n\r\n", 1)[0])


def describe_request(url, authorization=None):
    lines = ["DESCRIBE {} RTSP/1.0".format(url), "CSeq: 1", "Accept: application/sdp",
             "User-Agent: nanoseg-probe"]
    if authorization:
        lines.append("Authorization: " + authorization)
    return "\r\n".join(lines) + "\r\n\r\n"


def basic_authorization(user, password):
    token = "{}:{}".format(user, password or "").encode("utf-8")
    return "Basic " + base64.b64encode(token).decode("ascii")


def digest_authorization(challenge, user, password, method, url):
    """The RFC 2617 Digest (MD5, no qop: what RTSP cameras ask) answer to ``challenge``."""
    fields = dict(re.findall(r'(\w+)="?([^",]*)"?', challenge))
    realm, nonce = fields.get("realm", ""), fields.get("nonce", "")

    def md5(text):
        return hashlib.md5(text.encode("utf-8")).hexdigest()
    response = md5("{}:{}:{}".format(md5("{}:{}:{}".format(user, realm, password or "")),
                                     nonce, md5("{}:{}".format(method, url))))
    return ('Digest username="{}", realm="{}", nonce="{}", uri="{}", response="{}"'.format(
        user, realm, nonce, url, response))


def _challenge(answer, scheme):
    for value in answer.headers.get("www-authenticate", []):
        if value.lower().startswith(scheme):
            return value
    return None


def describe(location, user=None, password=None, timeout=PROBE_TIMEOUT):
    """DESCRIBE ``location`` (a URI without credentials) as ``user``.

    Like rtspsrc: first without credentials, then answering the camera's challenge, Digest
    when it offers it (the password never crosses the network in the clear then), else Basic.
    """
    parts = urlsplit(str(location))
    host, port = parts.hostname, parts.port or RTSP_PORT
    url = "rtsp://{}:{}{}".format(host, port, parts.path or "/") + (
        "?" + parts.query if parts.query else "")
    answer = request(host, port, describe_request(url), timeout)
    if answer.status == 401 and user is not None:
        digest = _challenge(answer, "digest")
        authorization = (basic_authorization(user, password) if digest is None else
                         digest_authorization(digest, user, password, "DESCRIBE", url))
        answer = request(host, port, describe_request(url, authorization), timeout)
    return answer


def probe(location, user=None, password=None, timeout=PROBE_TIMEOUT):
    """(RTSP status or None, a message for the error's tail or None) for ``location``.

    ``location`` is the URI without credentials (edge.sources.split_credentials gives both).
    Status None with a message: nothing RTSP answered; with None: the probe cannot tell
    (rtsps:// needs TLS). The message never names the user or the password.
    """
    parts = urlsplit(str(location))
    if parts.scheme.lower() != "rtsp" or not parts.hostname:
        return None, None
    where = "{}:{}".format(parts.hostname, parts.port or RTSP_PORT)
    try:
        answer = describe(location, user, password, timeout)
    except NanosegError as exc:
        return None, str(exc)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if getattr(exc, "strerror", None) else (str(exc) or repr(exc))
        return None, ("no RTSP server answers at {} ({}): check the camera's address and port "
                      "and that it is on and reachable".format(where, reason))
    LOG.debug("RTSP probe of %s: %d %s", location, answer.status, answer.reason)
    return answer.status, _status_message(answer, parts.path, user is not None)


def _status_message(answer, path, sent_credentials):
    status = "RTSP {} {}".format(answer.status, answer.reason).strip()
    if answer.status == 401:
        if sent_credentials:
            return ("the camera rejected the user name or password ({}): fix the credentials "
                    "in the URI ({})".format(status, CREDENTIALS_HINT))
        return "the camera needs credentials ({}): use {}".format(status, CREDENTIALS_HINT)
    if answer.status == 404:
        return ("the camera has no stream at {} ({}): check the path in the URI (see the "
                "camera's manual for its RTSP paths)".format(path or "/", status))
    if 200 <= answer.status < 300:
        return ("the camera answers ({}) but its stream did not play: check --rtsp-codec "
                "(h264 or h265) and that nothing else holds the camera".format(status))
    return "the camera answered {}: check the URI and the camera".format(status)


def refusal(location, user=None, password=None, timeout=PROBE_TIMEOUT):
    """Why the camera would refuse the stream, asked *before* OpenCV opens it; None when it
    accepts the DESCRIBE (2xx) or the probe cannot tell.

    OpenCV's GStreamer backend can wait forever for a pipeline whose rtspsrc got a 401 (it
    waits for the state change without a timeout): a refused stream must never reach it.
    """
    status, message = probe(location, user, password, timeout)
    if message is None or (status is not None and 200 <= status < 300):
        return None
    return message


def explain_failure(location, user=None, password=None, timeout=PROBE_TIMEOUT):
    """Why ``location`` did not open, the tail of a one-line error (None: the probe can't say).

    Safe to print: it names neither the user nor the password.
    """
    return probe(location, user, password, timeout)[1]
