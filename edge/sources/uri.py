"""A ``--source`` parsed once, like jetson-utils' URI: scheme, device or path, host and port,
credentials, query options.

``csi://0``, ``v4l2:///dev/video0``, ``0`` (a device index), ``rtsp://user:pw@host:554/live``
and plain paths (scheme ``file``; ``pattern`` when they hold glob wildcards) all become one
:class:`SourceURI`; edge.sources.schemes picks the reader from it. The URI as given can hold a
password: only ``shown`` (:func:`redact_uri`'s) is for logs and messages.
Python 3.6, standard library (and nanoseg.errors) only.
"""
import os

from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

from nanoseg.errors import NanosegError

SECRET_QUERY_KEYS = ("pass", "pwd", "secret", "token", "auth", "key")
WILDCARDS = "*?["
LOCAL_SCHEMES = ("csi", "v4l2", "file")  # what follows "://" is a device or a path
NEEDS_HOST = ("rtsp", "rtsps")  # refused here: OpenCV would be left to make sense of them


def redact_uri(uri):
    """``uri`` with any user name and password replaced by ``***``: safe to log or print.

    Everything before the last ``@`` of the address is hidden (also a password that holds an
    unencoded ``/`` or ``@``), and so are query values like ``password=...``.
    """
    text = str(uri)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return text
    if rest.rpartition("@")[0]:  # not "rtp://@:5000" (every interface: nothing to hide)
        rest = "***:***@" + rest.rpartition("@")[2]
    head, qmark, query = rest.partition("?")
    if qmark:
        fields = []
        for field in query.split("&"):
            key, equals, _ = field.partition("=")
            if equals and any(word in key.lower() for word in SECRET_QUERY_KEYS):
                field = key + "=***"
            fields.append(field)
        rest = head + "?" + "&".join(fields)
    return scheme + "://" + rest


def split_credentials(uri):
    """(``uri`` without ``user:password@``, user or None, password or None), percent-decoded.

    Percent-encode ``@ / : ? #`` inside a password (``%40`` ...): the URI is parsed by the
    standard rules.
    """
    parts = urlsplit(str(uri))
    if "@" not in parts.netloc:
        return str(uri), None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user) or None, unquote(password) if colon else None


class SourceURI(object):
    """One source URI, parsed when made.

    ``text``: the URI as given, stripped (may hold a password: never log it); ``shown``:
    the same, redacted; ``scheme``: lower case (``file`` for a path, ``v4l2`` for a bare
    device index); ``path``: what follows ``scheme://`` for csi/v4l2/file, the URL path
    for a network stream, the path itself for a file; ``device``: the CSI sensor or V4L2
    index as an int (``v4l2://`` keeps its text: a device path), else None; ``location``: the URI without
    credentials; ``host``, ``port`` (None when absent or not a number), ``user``,
    ``password``, ``query`` (a dict of the query options); ``pattern``: a path with glob
    wildcards; ``extension``: a path's lower-case extension. An RTSP URI without a host
    is a one-line error here.
    """

    __slots__ = ("text", "shown", "scheme", "path", "device", "location", "host", "port",
                 "user", "password", "query", "pattern", "extension")

    def __init__(self, uri):
        text = str(uri).strip()
        self.text = text
        self.shown = redact_uri(text)
        self.location, self.host, self.port = text, None, None
        self.user = self.password = self.device = None
        self.query = {}
        self.pattern = False
        self.extension = ""
        scheme, sep, rest = text.partition("://")
        if text.isdigit():
            self.scheme, self.path, self.device = "v4l2", text, int(text)
        elif not sep:
            self._parse_path("file", text)
        elif scheme.lower() in LOCAL_SCHEMES:
            self._parse_path(scheme.lower(), rest)
        else:
            self._parse_network(text)

    def _parse_path(self, scheme, path):
        self.scheme, self.path = scheme, path
        if scheme == "csi":
            self.device = int(path) if path.isdigit() else None
        elif scheme == "v4l2":
            self.device = path  # a device path; only a bare index is an int
        else:
            self.pattern = any(ch in path for ch in WILDCARDS)
            self.extension = os.path.splitext(path)[1].lower()

    def _parse_network(self, text):
        self.location, self.user, self.password = split_credentials(text)
        parts = urlsplit(self.location)
        self.scheme, self.host, self.path = parts.scheme.lower(), parts.hostname, parts.path
        try:
            self.port = parts.port
        except ValueError:  # not a number, or out of range: the stream's open says so
            self.port = None
        self.query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if self.scheme in NEEDS_HOST and not self.host:
            raise NanosegError("RTSP URI has no host: {} (use {}://[user:pass@]host[:port]/"
                               "path)".format(self.shown, self.scheme))

    def fields(self):
        """Every parsed field as a dict (tests compare these)."""
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __eq__(self, other):
        return isinstance(other, SourceURI) and self.fields() == other.fields()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return "SourceURI({!r})".format(self.shown)

