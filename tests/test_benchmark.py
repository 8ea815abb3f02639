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
