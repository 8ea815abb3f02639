"""display://N: an OpenCV window (the overlay; q or Esc stops the run). Without --headless
the run opens display://0 itself."""
from edge.sinks import WindowSink


def accepts(uri):
    return uri.scheme == "display"


def open_display(uri, options):
    screen = uri.text.partition("://")[2].strip("/") or "0"
    return WindowSink(options.title if screen == "0" else "{} ({})".format(options.title,
                                                                            screen),
                      source_names=options.sources)
