"""http://@:PORT/ (every interface) or http://HOST:PORT/: the MJPEG browser viewer
(edge/viewer.py); ``--view-port`` is this with --view-host."""
from edge.sinks import ViewerSink
from edge.viewer import MjpegViewer, check_port
from nanoseg.errors import NanosegError

ANY_HOST = "0.0.0.0"


def accepts(uri):
    return uri.scheme == "http"


def host_and_port(uri):
    if uri.bad_port or uri.port is None:
        raise NanosegError("--output {} needs a port, e.g. http://127.0.0.1:8080/ (or "
                           "http://@:8080/ for every interface)".format(uri.text))
    check_port(uri.port, "--output")
    return uri.host or ANY_HOST, uri.port


def open_viewer(uri, options):
    host, port = host_and_port(uri)
    viewer = MjpegViewer(host, port, title=options.title,
                         sources=options.sources or None).start()
    return ViewerSink(viewer, max_fps=options.view_fps)
