"""Several sources, --stats and the dashboard's endpoints under the Jetson's Python 3.6
(numpy 1.19, OpenCV 4.1.1): two image folders on the host-only stand-in, one backend."""
import json
import urllib.request

from edge.multisource import MultiStream
from edge.runtime import run_pipeline
from edge.sinks import MaskSink, ViewerSink
from edge.sources import ImageListReader, SourceStream
from edge.stats import LiveStats, StatsSink
from edge.viewer import MjpegViewer
from tests.multisource_helpers import expected_shares, standin_backend
from tests.video_helpers import write_frames


class KeptViewerSink(ViewerSink):
    def close(self):  # the test reads /stats.json after the run
        pass


def test_two_folders_share_one_backend_write_stats_and_serve_the_dashboard(tmp_path):
    streams, names = [], ["left", "right"]
    for name, count in zip(names, (6, 4)):
        folder = tmp_path / name
        folder.mkdir()
        streams.append(SourceStream(ImageListReader(write_frames(folder, count), name)).start())
    backend = standin_backend(1.0)
    live = LiveStats(backend.contract, names, "b")
    viewer = MjpegViewer("127.0.0.1", 0, sources=names, stats_provider=live.snapshot).start()
    masks = [MaskSink(str(tmp_path / "masks" / name)) for name in names]
    for index, sink in enumerate(masks):
        sink.source_index = index
    stats_path = tmp_path / "stats.jsonl"
    sinks = masks + [KeptViewerSink(viewer),
                     StatsSink(backend.contract, names, str(stats_path), live)]
    try:
        summary = run_pipeline(MultiStream(streams, names), backend, sinks, monitor=live)
        with urllib.request.urlopen(viewer.url + "stats.json", timeout=10) as response:
            snapshot = json.loads(response.read().decode("utf-8"))
        with urllib.request.urlopen(viewer.url, timeout=10) as response:
            page = response.read().decode("utf-8")
    finally:
        viewer.close()
    assert summary["error"] is None and summary["frames"] == 10
    assert [s["processed"] for s in summary["sources"]] == [6, 4]
    assert [m.written for m in masks] == [6, 4]
    lines = [json.loads(line) for line in stats_path.read_text().splitlines()]
    assert [sum(1 for l in lines if l["name"] == name) for name in names] == [6, 4]
    assert lines[0]["class_shares"]["road"] == round(expected_shares(backend.contract)["road"], 6)
    assert [s["frames"] for s in snapshot["sources"]] == [6, 4]
    assert '<img src="/stream.mjpg"' in page and '<img src="/stream/1.mjpg"' in page
