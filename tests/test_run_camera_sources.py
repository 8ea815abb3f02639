"""edge/run_camera.py with several --source, --stats and --ignore-class, in process (the
host-only stand-in in place of a model: a bundle folder with only its contract)."""
import json
import os

import pytest

from edge import run_camera
from nanoseg.contract import save_contract
from nanoseg.errors import NanosegError
from tests.multisource_helpers import standin_backend, street_contract, write_camvid_videos
from tests.video_helpers import count_frames


@pytest.fixture(scope="module")
def street_videos(tmp_path_factory, camvid_dir):
    return write_camvid_videos(tmp_path_factory.mktemp("street"), camvid_dir)


@pytest.fixture
def contract_bundle(tmp_path, monkeypatch):
    """A bundle folder holding contract.json; the backend is the stand-in."""
    folder = tmp_path / "bundle"
    folder.mkdir()
    save_contract(street_contract(), str(folder / "contract.json"))
    monkeypatch.setattr(run_camera, "load_backend", lambda *a, **k: standin_backend(1.0))
    return str(folder)


def test_source_repeats_and_the_first_stays_args_source():
    args = run_camera.parse_args(["--bundle", "b", "--source", "csi://0", "--source", "0"])
    assert args.sources == ["csi://0", "0"] and args.source == "csi://0"
    assert run_camera.parse_args(["--bundle", "b", "--source", "x.mp4"]).sources == ["x.mp4"]


def test_several_sources_with_an_output_lacking_a_template_are_refused_in_one_line(
        street_videos, tmp_path):
    args = run_camera.parse_args(["--bundle", "b", "--source", street_videos[0], "--source",
                                  street_videos[1], "--headless", "--output",
                                  str(tmp_path / "cam.mkv")])
    with pytest.raises(NanosegError) as info:
        run_camera.check_args(args)
    assert "{name} or {index}" in str(info.value) and "cam.mkv" in str(info.value)


def test_an_unknown_ignore_class_is_refused_before_the_sources_open(contract_bundle):
    args = run_camera.parse_args(["--bundle", contract_bundle, "--source", "nowhere.mp4",
                                  "--headless", "--ignore-class", "bus"])
    with pytest.raises(NanosegError, match="its classes are background, road, car, sign"):
        run_camera.main(args)


def test_two_videos_write_masks_per_source_stats_and_a_summary_per_source(
        street_videos, contract_bundle, tmp_path):
    stats, summary = tmp_path / "stats.jsonl", tmp_path / "summary.json"
    args = run_camera.parse_args([
        "--bundle", contract_bundle, "--source", street_videos[0], "--source",
        street_videos[1], "--headless", "--save-masks", str(tmp_path / "masks" / "{name}"),
        "--stats", str(stats), "--ignore-class", "car", "--summary", str(summary)])
    assert run_camera.main(args) == 0
    counts = [count_frames(v) for v in street_videos]
    assert sorted(os.listdir(str(tmp_path / "masks"))) == ["street0", "street1"]
    for name, count in zip(["street0", "street1"], counts):
        assert len(os.listdir(str(tmp_path / "masks" / name))) == count
    lines = [json.loads(line) for line in stats.read_text().splitlines()]
    assert len(lines) == sum(counts) and all("car" not in l["class_shares"] for l in lines)
    report = json.loads(summary.read_text())
    assert [s["name"] for s in report["sources"]] == ["street0", "street1"]
    assert [s["processed"] for s in report["sources"]] == counts
    assert report["frames"] == sum(counts) and report["error"] is None
    assert [s["sink"] for s in report["sinks"]] == [
        "MaskSink[street0]", "MaskSink[street1]", "StatsSink"]


def test_collect_with_two_sources_keeps_each_sources_frames_under_its_own_name(
        street_videos, contract_bundle, tmp_path):
    """Each source decides on its own frames (--collect-every), their files do not collide
    although the frame indexes do, and the one manifest names the source of every row."""
    import csv
    folder = tmp_path / "collected"
    args = run_camera.parse_args([
        "--bundle", contract_bundle, "--source", street_videos[0], "--source",
        street_videos[1], "--headless", "--collect", str(folder), "--collect-uncertain", "1",
        "--collect-every", "0.000001", "--collect-max", "3"])
    assert run_camera.main(args) == 0
    with open(str(folder / "collected.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(os.path.basename(row["source"]) for row in rows) == sorted(
        [os.path.basename(street_videos[0])] * 3 + [os.path.basename(street_videos[1])] * 3)
    images = sorted(os.listdir(str(folder / "images")))
    assert len(images) == 6 and len(set(images)) == 6
    assert sum("street0" in name for name in images) == 3
    assert sorted(row["image"] for row in rows) == ["images/" + name for name in images]
