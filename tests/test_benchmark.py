"""edge/benchmark.py and edge/benchmarks/: the host-only stand-in waits without the CPU, the
host CPU budget adds CPU times only, and a failed measurement still closes the backend.

(The benchmark's table on the trained bundle is in tests/test_run_camera.py.)
"""
import re
import time

import numpy as np
import pytest

from edge import benchmark
from edge.benchmarks.goals import host_cpu_ms_per_frame
from edge.benchmarks.standin import HostOnlyStandIn, fixed_labels
from nanoseg.contract import Contract
from nanoseg.errors import NanosegError
from nanoseg.normalization import Normalization
from tests.video_helpers import FakeBackend


def street_contract():
    return Contract.create(64, 64, ["road", "car"], "softmax",
                           Normalization.named("imagenet"))


def test_host_only_waits_without_using_the_cpu():
    standin = HostOnlyStandIn(street_contract(), 200)
    x = np.zeros((64, 64, 3), np.float32)
    wall, cpu = time.monotonic(), time.process_time()
    for _ in range(3):
        probs = standin.infer(x)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert wall >= 0.6
    assert cpu < 0.03, "the stand-in used {:.3f} s of CPU in {:.3f} s".format(cpu, wall)
    assert probs.shape == (64, 64, 3) and probs.dtype == np.float32
    labels = np.argmax(probs, axis=2)
    assert np.array_equal(labels, fixed_labels(standin.contract))
    assert set(np.unique(labels).tolist()) == {0, 1, 2}


def test_the_host_cpu_budget_adds_cpu_times_only():
    """The render's wall median (here inflated by a busy machine) is not CPU time."""
    results = {"bare_loop": {"cpu_ms_per_frame": 10.0}, "raw_inference": {"cpu_ms": 4.0},
               "render": {"median_ms": 9.0, "cpu_median_ms": 2.5}}
    assert host_cpu_ms_per_frame(results) == 10.0 - 4.0 + 2.5


def test_benchmark_closes_the_backend_when_a_measurement_fails(monkeypatch, tmp_path):
    fake = FakeBackend()
    monkeypatch.setattr(benchmark, "load_backend", lambda *args: fake)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    args = benchmark.parse_args(["--bundle", "b", "--video", str(broken),
                                 "--runs", "1", "--warmup", "0"])
    with pytest.raises(NanosegError, match="broken.mp4"):
        benchmark.main(args)
    assert fake.closed


def test_json_that_cannot_be_written_is_one_line_before_the_measurements(
        monkeypatch, tmp_path):
    def must_not_load(*args):
        raise AssertionError("loaded before --json was checked")
    monkeypatch.setattr(benchmark, "load_backend", must_not_load)
    plain = tmp_path / "notes.txt"
    plain.write_text("not a folder")
    for path, message in ((tmp_path / "missing" / "r.json", "--json folder {} does not "
                           "exist: create it first".format(tmp_path / "missing")),
                          (plain / "r.json", "--json {}: {} is not a folder".format(
                              plain / "r.json", plain))):
        args = benchmark.parse_args(["--bundle", "b", "--json", str(path)])
        with pytest.raises(NanosegError) as info:
            benchmark.main(args)
        assert str(info.value) == message


def test_json_that_fails_to_write_after_the_measurements_is_one_line(monkeypatch, tmp_path):
    folder = tmp_path / "usb"
    folder.mkdir()
    monkeypatch.setattr(benchmark, "load_backend", lambda *args: FakeBackend())

    def measure_while_the_disk_goes(backend, args, scratch):
        folder.rmdir()  # checked at the start, gone at the end (an unmounted disk)
        return {"ratios": []}, []
    monkeypatch.setattr(benchmark, "measure", measure_while_the_disk_goes)
    args = benchmark.parse_args(["--bundle", "b", "--json", str(folder / "r.json")])
    with pytest.raises(NanosegError) as info:
        benchmark.main(args)
    assert str(info.value) == "cannot write --json {}: No such file or directory".format(
        folder / "r.json")


@pytest.mark.parametrize("name,message", [
    ("missing.mp4", "--video file not found: {path}$"),
    ("missing", "--video file not found: {path}$"),
    ("rtmp://host/x", "unknown --video '{path}': use one of csi://N"),
])
def test_a_bad_video_names_the_video_flag_before_the_model_loads(monkeypatch, tmp_path, name,
                                                                 message):
    def load_backend(*args):
        raise AssertionError("the model loaded before --video was checked")
    monkeypatch.setattr(benchmark, "load_backend", load_backend)
    path = name if "://" in name else str(tmp_path / name)
    args = benchmark.parse_args(["--bundle", "b", "--video", path])
    with pytest.raises(NanosegError, match=message.format(path=re.escape(path))) as info:
        benchmark.main(args)
    assert "--source" not in str(info.value)


def test_soak_runs_every_writer_then_again_without_the_video_and_reports_both(
        tmp_path, camvid_dir, capsys):
    """A short soak on real CamVid frames (looped): the table has, for the soak with every
    writer and again without the video writer, the loop row and the three RSS figures (each
    a plausible size for this process, in the order measured), then the growth the mp4
    recording adds (the difference)."""
    import json
    from nanoseg.contract import save_contract
    from tests.video_helpers import write_street_video
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    save_contract(street_contract(), str(bundle / "contract.json"))
    video = tmp_path / "street.mp4"
    assert write_street_video(video, camvid_dir, 40, size=(320, 240)) == 40
    report = tmp_path / "soak.json"
    args = benchmark.parse_args(["--bundle", str(bundle), "--video", str(video),
                                 "--host-only", "0", "--soak", "300", "--json", str(report)])
    assert benchmark.main(args) == 0
    table = capsys.readouterr().out
    assert "| soak: loop + video + masks + viewer (1 local client) |" in table
    assert "| soak again without the video writer: loop + masks + viewer (1 local client) |" \
        in table
    results = json.loads(report.read_text())
    growths = []
    for key, tail in (("soak", ""), ("soak_without_video", ", no video writer")):
        figures = [float(m) for m in re.findall(
            r"\| RSS (?:at start|after warm-up \(30 frames\)|at the end \(300 frames\)){} "
            r"\| - \| - \| - \| ([\d.]+) MB \|".format(re.escape(tail)), table)]
        assert len(figures) == 3, table
        assert all(20.0 < mb < 8000.0 for mb in figures), figures
        growth = re.search(r"\| RSS growth after warm-up{} \| - \| - \| - \| ([+-][\d.]+) MB "
                           r"\|".format(re.escape(tail)), table)
        assert growth, table
        soak = results[key]
        assert soak["frames"] == 300 and soak["end_reason"]
        assert soak["viewer_bytes"] > 0                       # the client really read JPEGs
        written = {s["sink"]: s.get("written") for s in soak["sinks"]}
        assert written.get("VideoSink") == (300 if key == "soak" else None), written
        assert written["MaskSink"] == 300, written
        rss = soak["rss_mb"]
        assert [rss["start"], rss["after_warmup"], rss["end"]] == pytest.approx(figures,
                                                                               abs=0.05)
        assert rss["growth_after_warmup"] == pytest.approx(rss["end"] - rss["after_warmup"],
                                                           abs=0.01)
        assert float(growth.group(1)) == pytest.approx(rss["growth_after_warmup"], abs=0.05)
        growths.append(rss["growth_after_warmup"])
    share = re.search(r"\| RSS growth of the mp4 recording \(difference\) \| - \| - \| - \| "
                      r"([+-][\d.]+) MB \|", table)
    assert share and float(share.group(1)) == pytest.approx(growths[0] - growths[1], abs=0.06)


def test_soak_without_a_video_is_one_line_before_the_model_loads(monkeypatch):
    def must_not_load(*args):
        raise AssertionError("the model loaded before --soak was checked")
    monkeypatch.setattr(benchmark, "load_backend", must_not_load)
    for argv in (["--soak", "100"], ["--soak", "1", "--video", "x.mp4"]):
        args = benchmark.parse_args(["--bundle", "b"] + argv)
        with pytest.raises(NanosegError, match="--soak needs 2 or more frames and a --video"):
            benchmark.main(args)
