"""The dashboard page and its static assets (edge/viewer/static/: plain HTML, CSS and
JavaScript, no external files: the Jetson is often offline).

The page is made on the server with one ``<img>`` per source (so the streams show without
JavaScript); dashboard.js fills in the numbers from ``/stats.json`` every half second.
"""
import html
import os

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
ASSETS = {"/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
          "/dashboard.js": ("dashboard.js", "application/javascript; charset=utf-8")}


def read_static(name):
    with open(os.path.join(STATIC, name), "rb") as handle:
        return handle.read()


def stream_path(index):
    """Source 0's stream keeps the single-source viewer's address."""
    return "/stream.mjpg" if index == 0 else "/stream/{}.mjpg".format(index)


def source_panel(index, name):
    return ('<section class="source" id="source-{i}" data-index="{i}">'
            '<h2><span class="name">{name}</span> <span class="state" data-field="state">'
            '</span></h2><img src="{src}" alt="{name} live stream">'
            '<div class="numbers" data-field="numbers"></div>'
            '<div class="shares" data-field="shares"></div></section>').format(
                i=index, name=html.escape(name), src=stream_path(index))


def page(title, names):
    """The dashboard's HTML for these source names."""
    template = read_static("dashboard.html").decode("utf-8")
    panels = "".join(source_panel(index, name) for index, name in enumerate(names))
    return template.replace("{title}", html.escape(str(title))).replace(
        "{sources}", panels).encode("utf-8")


def send_page(handler, title, names):
    handler.send_body(200, "text/html; charset=utf-8", page(title, names))


def send_asset(handler, path):
    """True when ``path`` is a static asset (and it was sent)."""
    if path not in ASSETS:
        return False
    name, content_type = ASSETS[path]
    handler.send_body(200, content_type, read_static(name))
    return True
