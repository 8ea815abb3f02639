"""Timing that is fair on a shared 2-core machine: wall and process-CPU time, interleaved.

Used by every benchmark (edge/benchmark.py, convert/validate.py, tools/compare_backbones.py)
so that their numbers mean the same thing. Python 3.6, numpy only.
"""
import time

import numpy as np


def latency_stats(samples):
    """{median_ms, p90_ms, fps, cpu_median_ms, cpu_p90_ms} from (wall s, CPU s) samples.

    The process CPU time of a call does not grow when other jobs share the cores, so the
    host stages are compared on it; wall time is what the loop feels.
    """
    wall = np.asarray([w for w, _ in samples], dtype=np.float64) * 1000.0
    cpu = np.asarray([c for _, c in samples], dtype=np.float64) * 1000.0
    median, mean = float(np.median(wall)), float(np.mean(wall))
    return {"median_ms": round(median, 3), "p90_ms": round(float(np.percentile(wall, 90)), 3),
            "fps": round(1000.0 / median, 2) if median > 0 else None, "runs": int(wall.size),
            "mean_fps": round(1000.0 / mean, 2) if mean > 0 else None,
            "cpu_median_ms": round(float(np.median(cpu)), 3),
            "cpu_p90_ms": round(float(np.percentile(cpu, 90)), 3)}


def time_calls(function, runs, warmup):
    """(wall s, process CPU s) of ``runs`` calls of ``function()`` after ``warmup`` ones."""
    return time_interleaved([function], runs, warmup)[0]


def time_interleaved(functions, runs, warmup):
    """Per function, ``runs`` (wall, CPU) samples, taken in turns: a change of the machine's
    load during the measurement hits each function alike, so their ratio stays fair."""
    for _ in range(warmup):
        for function in functions:
            function()
    samples = [[] for _ in functions]
    for _ in range(runs):
        for function, out in zip(functions, samples):
            cpu, start = time.process_time(), time.perf_counter()
            function()
            out.append((time.perf_counter() - start, time.process_time() - cpu))
    return samples
