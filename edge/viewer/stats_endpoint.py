"""``GET /stats.json``: the numbers the dashboard shows, as JSON.

The server holds a provider (``LiveStats.snapshot`` of edge/stats.py, given by run_camera);
without one (a bare viewer) it is the source names only.
"""
import collections
import json


def stats_body(provider, names):
    """The JSON bytes of one snapshot."""
    if provider is not None:
        snapshot = provider()
    else:
        snapshot = collections.OrderedDict([("sources", [
            collections.OrderedDict([("index", index), ("name", name),
                                     ("stream", "/stream/{}.mjpg".format(index))])
            for index, name in enumerate(names)])])
    return json.dumps(snapshot).encode("utf-8")


def send_stats(handler, provider, names):
    handler.send_body(200, "application/json", stats_body(provider, names))
