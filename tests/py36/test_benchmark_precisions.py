"""edge/benchmarks/precisions.py and its hook in edge/benchmark.py: FP16 vs FP32 engines timed
on the stand-in TensorRT (tests/tensorrt_standin.py), the speed-up printed; no comparison
unless both engines exist."""
import json
import re

from edge import benchmark
from edge.benchmarks import precisions
from nanoseg.bundle import ONNX
from tests import tensorrt_standin as standin


def build_both(bundle, trt, which=("fp16", "fp32")):
    from convert import build_engine
    for precision in which:
        build_engine.ensure_engine(bundle, bundle.path(ONNX), bundle.onnx_contract(), trt,
                                   precision == "fp32", 256, False, device="Fake Tegra X1")


def test_both_engines_are_timed_and_the_speedup_is_their_median_ratio(bundle, monkeypatch):
    cuda = standin.FakeCuda()
    trt = standin.make_tensorrt("8", cuda=cuda)
    standin.install(monkeypatch, cuda, trt)
    build_both(bundle, trt, ["fp16"])
    assert precisions.compare_precisions(bundle, 3, 0) is None     # FP32 missing: no rows
    build_both(bundle, trt, ["fp32"])
    results = precisions.compare_precisions(bundle, 3, 0)
    assert set(results) == {"fp16", "fp32", "fp16_speedup"}
    assert "model-fp16-" in results["fp16"]["engine"]
    assert "model-fp32-" in results["fp32"]["engine"]
    assert results["fp16_speedup"] == round(results["fp32"]["median_ms"]
                                            / results["fp16"]["median_ms"], 3)
    text = precisions.format_comparison(results)
    assert text.splitlines()[2].startswith("| TensorRT FP16 | ")
    assert text.splitlines()[3].startswith("| TensorRT FP32 | ")
    assert re.search(r"FP16 speed-up over FP32: \d+\.\d\dx \(median \d+\.\d\d ms vs "
                     r"\d+\.\d\d ms\)$", text)


def test_benchmark_with_the_tensorrt_backend_prints_the_comparison(bundle, monkeypatch,
                                                                   tmp_path, capsys):
    cuda = standin.FakeCuda()
    trt = standin.make_tensorrt("10", cuda=cuda)
    standin.install(monkeypatch, cuda, trt)
    build_both(bundle, trt)
    report = tmp_path / "bench.json"
    args = benchmark.parse_args(["--bundle", bundle.root, "--backend", "tensorrt", "--runs",
                                 "2", "--warmup", "0", "--json", str(report)])
    assert benchmark.main(args) == 0
    out = capsys.readouterr().out
    assert "| raw inference, batch 1, 96x64 | " in out
    assert "FP16 speed-up over FP32: " in out
    saved = json.loads(report.read_text())["fp16_vs_fp32"]
    assert saved["fp16"]["runs"] == 2 and saved["fp16_speedup"] > 0
    args = benchmark.parse_args(["--bundle", bundle.root, "--backend", "onnxruntime",
                                 "--runs", "1", "--warmup", "0"])
    monkeypatch.setattr(benchmark, "load_backend",
                        lambda *a: precisions.TensorRTBackend(bundle))
    benchmark.main(args)
    assert "speed-up" not in capsys.readouterr().out   # only asked for with tensorrt
