"""An ``--output`` parsed once: scheme, host, port, stream name, file path and extension."""
import os

from urllib.parse import urlsplit

from nanoseg.errors import NanosegError


class OutputURI(object):
    """One output URI, parsed when made.

    ``scheme``: lower case, ``file`` for a path; ``path``: the file's path, or the URL path;
    ``name``: the URL path without its slashes (an RTSP stream name); ``host``: None when
    absent (``rtsp://@:PORT/NAME`` = every interface); ``port``: None when absent,
    ``bad_port`` when one was given that is not 1-65535; ``extension``: a file's, lower case.
    """

    __slots__ = ("text", "scheme", "path", "name", "host", "port", "bad_port", "extension")

    def __init__(self, uri):
        text = str(uri).strip()
        self.text = text
        self.host = self.port = None
        self.bad_port = False
        self.name = ""
        scheme, sep, _ = text.partition("://")
        if not sep:
            self.scheme, self.path = "file", text
            self.extension = os.path.splitext(text)[1].lower()
            return
        self.extension = ""
        split = urlsplit(text.replace("://@", "://", 1))  # "@": no host, every interface
        self.scheme, self.host, self.path = scheme.lower(), split.hostname, split.path
        self.name = split.path.strip("/")
        try:
            self.port = split.port
        except ValueError:  # not a number or out of range
            self.bad_port = True

    def port_or_error(self, default=None):
        """The port (``default`` when absent); a one-line error when there is none."""
        port = None if self.bad_port else (self.port or default)
        if not port:
            raise NanosegError("--output {} needs a port 1-65535, e.g. "
                               "rtp://127.0.0.1:5000".format(self.text))
        return port

    def fields(self):
        """Every parsed field as a dict (tests compare these)."""
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __repr__(self):
        return "OutputURI({!r})".format(self.text)
