"""Why an RTSP camera will not (or did not) open: a DESCRIBE over a plain socket.

OpenCV only says "could not open" (GStreamer's reason, e.g. "Unauthorized", goes to stderr
as a warning, FFmpeg's nowhere), so nanoseg asks the camera itself: no connection means no
server at that address, 401 a wrong (or missing) user name or password, 404 a wrong path;
the answer becomes the one-line error. It asks *before* each open (:func:`refusal`), because
OpenCV's GStreamer backend can wait forever on a stream the camera refuses; only those three
block the open: any other answer (a 3xx redirect rtspsrc follows, a 400/403/454 some camera
gives DESCRIBE but not rtspsrc's requests, a slow answer) goes on to OpenCV, and its words
are used only if OpenCV then fails (:func:`explain_failure` asks again). Credentials answer
the camera's challenge (Digest MD5 or Basic), as rtspsrc and FFmpeg do. Nothing here logs or
returns the password.
Python 3.6, standard library only.
"""
import base64
import hashlib
import logging
import re
import socket

from urllib.parse import urlsplit

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

RTSP_PORT = 554
PROBE_TIMEOUT = 3.0  # s for connecting and for the answer: a camera on the LAN answers in ms
MAX_HEADER_BYTES = 65536
REFUSING_STATUSES = (401, 404)  # answers that mean the stream can never play as given
CREDENTIALS_HINT = ("rtsp://user:password@host[:port]/path, with @ : / % in them "
                    "percent-encoded like %40")


class NoConnection(OSError):
    """Nothing accepted a TCP connection at the camera's address (refused, unreachable, a
    name that does not resolve, a connect timeout): unlike a slow answer, nothing to try."""


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
    """Send one RTSP request and return the :class:`RtspAnswer`.

    :class:`NoConnection` when the connection cannot be made, another OSError (a timeout, a
    closed connection) when it was made but no answer came.
    """
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise NoConnection(exc.errno, exc.strerror or str(exc) or type(exc).__name__)
    with conn:
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
    The request URI is ``location`` as given (no port added, an IPv6 literal kept in its
    brackets): some cameras match it against their own paths, and Digest hashes it.
    """
    parts = urlsplit(str(location))
    host, port = parts.hostname, parts.port or RTSP_PORT
    url = str(location)
    answer = request(host, port, describe_request(url), timeout)
    if answer.status == 401 and user is not None:
        digest = _challenge(answer, "digest")
        authorization = (basic_authorization(user, password) if digest is None else
                         digest_authorization(digest, user, password, "DESCRIBE", url))
        answer = request(host, port, describe_request(url, authorization), timeout)
    return answer


def probe(location, user=None, password=None, timeout=PROBE_TIMEOUT, shown=None):
    """(RTSP status or None, a message for the error's tail or None) for ``location``.

    ``location`` is the URI without credentials (edge.sources.uri.SourceURI's ``location``,
    ``user`` and ``password``); ``shown`` the URI safe to log (its ``shown``: a query may
    hold a token).
    Status None with a message: nothing RTSP answered; with None: the probe cannot tell
    (rtsps:// needs TLS). The message never names the user or the password.
    """
    return _ask(location, user, password, timeout, shown)[:2]


def _ask(location, user, password, timeout, shown):
    """(status, message, refused): ``refused`` when the open must not go on to OpenCV."""
    parts = urlsplit(str(location))
    if parts.scheme.lower() != "rtsp" or not parts.hostname:
        return None, None, False
    where = "{}:{}".format(parts.hostname, parts.port or RTSP_PORT)
    try:
        answer = describe(location, user, password, timeout)
    except NanosegError as exc:
        return None, str(exc), False
    except (OSError, ValueError) as exc:
        reason = exc.strerror if getattr(exc, "strerror", None) else (str(exc) or repr(exc))
        if isinstance(exc, NoConnection):
            return None, ("no RTSP server answers at {} ({}): check the camera's address and "
                          "port and that it is on and reachable".format(where, reason)), True
        return None, ("the camera at {} accepted the connection but gave no RTSP answer "
                      "({}): check the URI and the camera".format(where, reason)), False
    LOG.debug("RTSP probe of %s: %d %s", shown or where, answer.status, answer.reason)
    return (answer.status, _status_message(answer, parts.path, user is not None),
            answer.status in REFUSING_STATUSES)


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


def refusal(location, user=None, password=None, timeout=PROBE_TIMEOUT, shown=None):
    """Why the camera will refuse the stream, asked *before* OpenCV opens it, or None.

    OpenCV's GStreamer backend can wait forever for a pipeline whose rtspsrc got a 401 (it
    waits for the state change without a timeout): a refused stream must never reach it. Only
    a sure refusal counts (no connection, 401, 404): anything else (a redirect, a status only
    DESCRIBE gets, no answer in time) may still play, so it goes on to OpenCV.
    """
    status, message, refused = _ask(location, user, password, timeout, shown)
    if refused:
        return message
    if message is not None and not (status is not None and 200 <= status < 300):
        LOG.debug("RTSP probe of %s: %s; letting OpenCV try", shown or "the camera", message)
    return None


def explain_failure(location, user=None, password=None, timeout=PROBE_TIMEOUT, shown=None):
    """Why ``location`` did not open, the tail of a one-line error (None: the probe can't say).

    Safe to print: it names neither the user nor the password.
    """
    return probe(location, user, password, timeout, shown)[1]
