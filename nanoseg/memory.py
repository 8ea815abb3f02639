"""Memory figures on Linux (a Jetson's 4 GB are shared by the CPU and the GPU).

The system's available memory and swap from ``/proc/meminfo`` (``MemAvailable``, what can
be allocated without swapping, counts the GPU's share on a Jetson too), a process's resident
and peak resident memory from ``/proc/<pid>/status`` (``VmRSS``, ``VmHWM``). Every reader
takes its path so tests can give a file; a figure that cannot be read is None (not Linux,
or the process has ended), never an error: memory figures inform, they never stop a run.

Python 3.6, standard library only.
"""
import collections
import resource
import sys

MEMINFO = "/proc/meminfo"
KIB_PER_MIB = 1024.0


class Snapshot(collections.namedtuple(
        "Snapshot", "available_mib swap_used_mib total_mib rss_mib peak_rss_mib")):
    """Memory at one moment, in MiB (each None when unknown)."""

    def as_dict(self):
        return dict((k, None if v is None else round(v, 1)) for k, v in self._asdict().items())


def read_kib_fields(path):
    """``{"MemAvailable": 123456, ...}`` from a ``Key:  N kB`` file, or {} if unreadable."""
    fields = {}
    try:
        with open(path, "r") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts and parts[0].isdigit():
                    fields[key.strip()] = int(parts[0])
    except (IOError, OSError):
        return {}
    return fields


def _mib(fields, key):
    return fields[key] / KIB_PER_MIB if key in fields else None


def system_memory(meminfo=MEMINFO):
    """(available, swap used, total) MiB from /proc/meminfo; Nones where unknown."""
    fields = read_kib_fields(meminfo)
    swap = None
    if "SwapTotal" in fields and "SwapFree" in fields:
        swap = (fields["SwapTotal"] - fields["SwapFree"]) / KIB_PER_MIB
    return _mib(fields, "MemAvailable"), swap, _mib(fields, "MemTotal")


def process_memory(pid="self"):
    """(RSS, peak RSS) MiB of a process; the peak of this process falls back to getrusage."""
    fields = read_kib_fields("/proc/{}/status".format(pid))
    rss, peak = _mib(fields, "VmRSS"), _mib(fields, "VmHWM")
    if peak is None and pid == "self" and sys.platform.startswith("linux"):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / KIB_PER_MIB  # kB on Linux
    return rss, peak


def snapshot(pid="self", meminfo=MEMINFO):
    """The system's memory and one process's (this one by default)."""
    available, swap, total = system_memory(meminfo)
    rss, peak = process_memory(pid)
    return Snapshot(available, swap, total, rss, peak)


def _fmt(value):
    return "?" if value is None else "{:.0f}".format(value)


def format_snapshot(snap):
    """``RSS 412 MiB (peak 530), available 1840 MiB, swap used 12 MiB``."""
    return "RSS {} MiB (peak {}), available {} MiB, swap used {} MiB".format(
        _fmt(snap.rss_mib), _fmt(snap.peak_rss_mib), _fmt(snap.available_mib),
        _fmt(snap.swap_used_mib))


def format_change(before, after, what):
    """``<what>: available 2900 -> 2450 MiB (-450), RSS 80 -> 520 MiB`` (one line)."""
    delta = ""
    if before.available_mib is not None and after.available_mib is not None:
        delta = " ({:+.0f})".format(after.available_mib - before.available_mib)
    return "{}: available {} -> {} MiB{}, RSS {} -> {} MiB (peak {})".format(
        what, _fmt(before.available_mib), _fmt(after.available_mib), delta,
        _fmt(before.rss_mib), _fmt(after.rss_mib), _fmt(after.peak_rss_mib))


def format_brief(snap):
    """``RSS 520 MiB, available 2450 MiB`` (for progress lines)."""
    return "RSS {} MiB, available {} MiB".format(_fmt(snap.rss_mib), _fmt(snap.available_mib))


def load_report(before, after, end):
    """What a run's summary records: memory before/after the model loaded, at the end, and
    the process's peak RSS."""
    return {"before_load": before.as_dict(), "after_load": after.as_dict(),
            "end": end.as_dict(), "peak_rss_mib": end.as_dict()["peak_rss_mib"]}


def format_report(report):
    """:func:`load_report` as one summary line."""
    before, after, end = (Snapshot(**report[k]) for k in ("before_load", "after_load", "end"))
    return "memory: {}; peak RSS {} MiB, available at the end {} MiB".format(
        format_change(before, after, "model load"), _fmt(report["peak_rss_mib"]),
        _fmt(end.available_mib))
