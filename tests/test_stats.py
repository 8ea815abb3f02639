"""Per-frame statistics (edge/stats.py): the --stats JSON lines of a real two-video run,
--ignore-class (not counted, not drawn), the dashboard's snapshot."""
import json
import time

import cv2
import numpy as np
import pytest

from edge import overlay
from edge.benchmarks.standin import fixed_labels
from edge.multisource import MultiStream, source_names
from edge.runtime import run_pipeline
from edge.sources import open_source
from edge.stats import LiveStats, StatsSink, resolve_ignored
from nanoseg.errors import NanosegError
from tests.multisource_helpers import (expected_shares, standin_backend, street_contract,
                                       write_camvid_videos)
from tests.video_helpers import count_frames


@pytest.fixture(scope="module")
def street_videos(tmp_path_factory, camvid_dir):
    return write_camvid_videos(tmp_path_factory.mktemp("street"), camvid_dir)


def run_with_stats(videos, path, ignored=(), live=None, milliseconds=2.0):
    backend = standin_backend(milliseconds)
    names = source_names(videos)
    sink = StatsSink(backend.contract, names, str(path), live, ignored)
    stream = MultiStream([open_source(v) for v in videos], names)
    summary = run_pipeline(stream, backend, [sink], hidden=ignored, monitor=live)
    return summary, backend


def test_the_stats_file_has_one_line_per_frame_with_source_shares_stages_and_times(
        street_videos, tmp_path):
    path = tmp_path / "stats.jsonl"
    started = time.time()
    summary, backend = run_with_stats(street_videos, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert summary["error"] is None
    assert len(lines) == summary["frames"] == sum(count_frames(v) for v in street_videos)
    for source, name in enumerate(source_names(street_videos)):
        mine = [line for line in lines if line["source"] == source]
        assert [line["frame"] for line in mine] == list(range(count_frames(
            street_videos[source])))
        assert all(line["name"] == name for line in mine)
    first = lines[0]
    assert list(first) == ["source", "name", "frame", "capture_time", "fps", "class_shares",
                           "stages_ms", "non_finite"]
    assert started - 1 <= first["capture_time"] <= time.time()
    assert list(first["stages_ms"]) == ["capture", "pre", "infer", "post", "render"]
    assert first["stages_ms"]["infer"] >= 2.0 and first["non_finite"] is False
    assert lines[-1]["fps"] > 0
    want = expected_shares(backend.contract)
    assert list(first["class_shares"]) == list(backend.contract.class_names)
    for name, share in want.items():
        assert first["class_shares"][name] == pytest.approx(share, abs=1e-6)


def test_an_ignored_class_is_not_counted_not_drawn_and_unknown_names_are_refused(
        street_videos, tmp_path):
    contract = street_contract()
    ignored = resolve_ignored(["car"], contract)
    assert ignored == [2]
    with pytest.raises(NanosegError) as info:
        resolve_ignored(["bus"], contract)
    assert str(info.value) == ("--ignore-class bus: this model has no such class; its "
                               "classes are background, road, car, sign")
    path = tmp_path / "stats.jsonl"
    run_with_stats(street_videos[:1], path, ignored)
    shares = json.loads(path.read_text().splitlines()[0])["class_shares"]
    assert "car" not in shares and sum(shares.values()) == pytest.approx(1.0, abs=1e-5)
    for name, share in expected_shares(contract, ignored).items():
        assert shares[name] == pytest.approx(share, abs=1e-6)
    frame = np.full((480, 640, 3), 90, np.uint8)
    labels = fixed_labels(contract)
    drawn = overlay.Renderer(contract, 0.5, hidden=ignored).overlay(frame, labels)
    shown = overlay.Renderer(contract, 0.5).overlay(frame, labels)
    big = cv2.resize(labels, (640, 480), interpolation=cv2.INTER_NEAREST)
    below_legend = np.zeros(big.shape, bool)
    below_legend[200:] = True
    cars, roads = below_legend & (big == 2), below_legend & (big == 1)
    assert (drawn[cars] == 90).all() and not (shown[cars] == 90).all()
    assert (drawn[roads] == shown[roads]).all() and not (drawn[roads] == 90).all()


def test_the_live_snapshot_has_each_source_the_model_and_the_outputs(street_videos,
                                                                     tmp_path):
    contract = street_contract()
    names = source_names(street_videos)
    live = LiveStats(contract, names, "bundles/street")
    summary, backend = run_with_stats(street_videos, tmp_path / "s.jsonl", live=live)
    snap = json.loads(json.dumps(live.snapshot()))
    assert snap["model"] == {"bundle": "bundles/street", "backend": backend.describe(),
                             "precision": "fp32"}
    assert [c["name"] for c in snap["classes"]] == ["background", "road", "car", "sign"]
    assert snap["classes"][1]["color"] == "#{:02x}{:02x}{:02x}".format(*contract.colors[1])
    assert [s["name"] for s in snap["sources"]] == names
    for source, video in zip(snap["sources"], street_videos):
        assert source["frames"] == count_frames(video) == source["processed"]
        assert source["state"] == "ended" and source["stream"].endswith(".mjpg")
        assert source["class_shares"]["road"] == pytest.approx(
            expected_shares(contract)["road"], abs=1e-6)
    assert snap["outputs"][0]["sink"] == "StatsSink" and snap["outputs"][0]["queue"] == 0
    assert snap["outputs"][0]["written"] == summary["frames"]
