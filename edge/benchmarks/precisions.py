"""FP16 vs FP32: both TensorRT engines of a bundle timed the same way, and the speed-up.

FP16 is not always faster at batch 1 (small models are launch-bound), so when a bundle has
an FP16 and an FP32 engine for this TensorRT and GPU, ``edge/benchmark.py --backend
tensorrt`` times each (one loaded at a time: a Nano's memory holds one comfortably) and
prints the ratio of their medians.
"""
from edge.benchmarks.stages import benchmark_backend
from edge.tensorrt import engines
from edge.tensorrt.backend import TensorRTBackend, tensorrt_platform
from nanoseg import memory

PRECISIONS = ("fp16", "fp32")


def engines_by_precision(bundle):
    """{precision: newest engine path} for this bundle's model.onnx, TensorRT and GPU."""
    found = tensorrt_platform()
    if found is None:
        return {}
    paths = {}
    for precision in PRECISIONS:
        path = engines.find_engine(bundle, tensorrt_version=found[0], device=found[1],
                                   precision=precision)
        if path:
            paths[precision] = path
    return paths


def compare_precisions(bundle, runs, warmup, open_engine=TensorRTBackend):
    """Time each engine; -> results dict, or None unless both precisions have an engine."""
    paths = engines_by_precision(bundle)
    if len(paths) < len(PRECISIONS):
        return None
    results = {}
    for precision in PRECISIONS:
        before = memory.snapshot()
        backend = open_engine(bundle, paths[precision])
        loaded = memory.snapshot()
        try:
            stats = benchmark_backend(backend, runs, warmup)
        finally:
            backend.close()
        stats["engine"] = paths[precision]
        stats["load_available_change_mib"] = None if None in (
            before.available_mib, loaded.available_mib) else round(
                loaded.available_mib - before.available_mib, 1)
        results[precision] = stats
    results["fp16_speedup"] = round(results["fp32"]["median_ms"]
                                    / max(results["fp16"]["median_ms"], 1e-9), 3)
    return results


def format_comparison(results):
    """A Markdown table of the two engines and the speed-up line under it."""
    lines = ["| engine | median ms | p90 ms | FPS | memory taken by the load MiB |",
             "|---|---|---|---|---|"]
    for precision in PRECISIONS:
        stats = results[precision]
        taken = stats["load_available_change_mib"]
        lines.append("| TensorRT {} | {:.2f} | {:.2f} | {:.1f} | {} |".format(
            precision.upper(), stats["median_ms"], stats["p90_ms"], stats["fps"],
            "?" if taken is None else "{:.0f}".format(-taken)))
    lines.append("")
    lines.append("FP16 speed-up over FP32: {:.2f}x (median {:.2f} ms vs {:.2f} ms)".format(
        results["fp16_speedup"], results["fp16"]["median_ms"], results["fp32"]["median_ms"]))
    return "\n".join(lines)
