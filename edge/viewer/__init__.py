"""The browser viewer and dashboard: an HTTP server (server.py) with each source's MJPEG
stream (stream.py), the dashboard page and its static assets (dashboard.py, static/) and the
statistics endpoint (stats_endpoint.py). Python 3.6 standard library only."""
from edge.viewer.server import BACKLOG, CLIENT_GONE, IDLE_TIMEOUT, MjpegViewer, check_port
from edge.viewer.stream import BOUNDARY, FrameBoard

__all__ = ["BACKLOG", "BOUNDARY", "CLIENT_GONE", "IDLE_TIMEOUT", "FrameBoard", "MjpegViewer",
           "check_port"]
