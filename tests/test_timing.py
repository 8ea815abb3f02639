"""nanoseg/timing.py: latency statistics from known samples, and interleaved timing that
calls each function in turn, after its warm-up, the number of times asked."""
import time

import pytest

from nanoseg import timing


def test_latency_stats_from_known_samples():
    # wall 10, 20, 30, 40 ms; CPU 1, 2, 3, 4 ms
    samples = [(0.010, 0.001), (0.020, 0.002), (0.030, 0.003), (0.040, 0.004)]
    stats = timing.latency_stats(samples)
    assert stats["median_ms"] == pytest.approx(25.0)
    assert stats["p90_ms"] == pytest.approx(37.0)  # numpy's linear interpolation
    assert stats["fps"] == pytest.approx(40.0)      # 1000 / median
    assert stats["mean_fps"] == pytest.approx(40.0)  # 1000 / mean (also 25 ms here)
    assert stats["cpu_median_ms"] == pytest.approx(2.5)
    assert stats["cpu_p90_ms"] == pytest.approx(3.7)
    assert stats["runs"] == 4


def test_calls_too_fast_to_measure_have_no_frame_rate_instead_of_a_division_error():
    stats = timing.latency_stats([(0.0, 0.0), (0.0, 0.0)])
    assert stats["median_ms"] == 0.0 and stats["fps"] is None and stats["mean_fps"] is None


def test_interleaved_timing_takes_turns_after_the_warmup():
    calls = []
    first, second = (lambda: calls.append("a")), (lambda: calls.append("b"))
    samples = timing.time_interleaved([first, second], runs=3, warmup=2)
    assert calls == ["a", "b"] * 5  # 2 warm-up rounds, then 3 measured, in turns
    assert [len(s) for s in samples] == [3, 3]
    for wall, cpu in samples[0] + samples[1]:
        assert wall >= 0 and cpu >= 0


def test_wall_time_counts_a_wait_that_cpu_time_does_not():
    wall, cpu = timing.time_calls(lambda: time.sleep(0.05), runs=2, warmup=0)[0]
    assert wall >= 0.045 and cpu < 0.02
