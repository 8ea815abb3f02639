"""Stage timing for the live pipeline: per-stage durations (median / p90) and the current FPS.

Every stage is timed with time.monotonic() (a Jetson has no RTC: the wall clock jumps when
NTP syncs).
"""
import collections
import threading
import time

import numpy as np

STAGES = ("capture", "pre", "infer", "post", "render")
HISTORY = 20000  # samples kept per stage (hours at camera rates; bounded memory)


class StageTimer(object):
    """Thread-safe per-stage durations in milliseconds, with median / p90 summaries."""

    def __init__(self, stages=STAGES):
        self._lock = threading.Lock()
        # preallocated rings: memory fixed from the first frame (a deque of floats grew by
        # ~3 MB over its first HISTORY frames, which a soak cannot tell from a leak)
        self._samples = collections.OrderedDict(
            (name, np.zeros(HISTORY, np.float64)) for name in stages)
        self._counts = dict((name, 0) for name in stages)
        self._latest = dict((name, 0.0) for name in stages)

    def add(self, stage, seconds):
        ms = seconds * 1000.0
        with self._lock:
            self._samples[stage][self._counts[stage] % HISTORY] = ms
            self._counts[stage] += 1
            self._latest[stage] = ms

    def latest(self):
        """[(stage, last ms)] for the on-screen statistics."""
        with self._lock:
            return [(name, self._latest[name]) for name in self._samples]

    def summary(self):
        """{stage: {"median_ms", "p90_ms", "count"}} over the recorded samples."""
        with self._lock:
            data = [(name, values[:min(self._counts[name], HISTORY)].copy())
                    for name, values in self._samples.items()]
        out = collections.OrderedDict()
        for name, values in data:
            if len(values):
                out[name] = {"median_ms": round(float(np.median(values)), 3),
                             "p90_ms": round(float(np.percentile(values, 90)), 3),
                             "count": len(values)}
            else:
                out[name] = {"median_ms": None, "p90_ms": None, "count": 0}
        return out


class RateMeter(object):
    """Frames per second over the last ``window`` frames: the on-screen, current FPS."""

    def __init__(self, window=30):
        self._times = collections.deque(maxlen=max(int(window), 2))

    def tick(self, now=None):
        """Count one frame (at ``now``, time.monotonic() by default); the current rate."""
        self._times.append(time.monotonic() if now is None else now)
        return self.rate

    @property
    def rate(self):
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0
