"""nanoseg/memory.py: /proc/meminfo and /proc/<pid>/status read into MiB, None where unknown."""
import os
import subprocess
import sys

from nanoseg import memory

MEMINFO = """MemTotal:        4059712 kB
MemFree:          123456 kB
MemAvailable:     204800 kB
SwapCached:            0 kB
SwapTotal:       4194304 kB
SwapFree:        3145728 kB
HugePages_Total:       0
"""


def test_system_memory_reads_available_swap_used_and_total(tmp_path):
    path = tmp_path / "meminfo"
    path.write_text(MEMINFO)
    available, swap, total = memory.system_memory(str(path))
    assert (available, swap) == (200.0, 1024.0) and round(total) == 3965
    assert memory.read_kib_fields(str(path))["HugePages_Total"] == 0


def test_unreadable_figures_are_none_not_errors(tmp_path):
    assert memory.system_memory(str(tmp_path / "missing")) == (None, None, None)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert memory.process_memory(proc.pid) == (None, None)   # the process has ended
    snap = memory.snapshot(proc.pid, str(tmp_path / "missing"))
    assert memory.format_snapshot(snap) == ("RSS ? MiB (peak ?), available ? MiB, swap used "
                                            "? MiB")


def test_this_process_has_a_resident_size_and_a_peak_at_least_as_large():
    rss, peak = memory.process_memory()
    assert rss > 1 and peak >= rss
    if os.path.exists("/proc/meminfo"):
        snap = memory.snapshot()
        assert snap.available_mib > 0 and snap.total_mib >= snap.available_mib


def test_a_change_is_one_line_with_the_difference():
    before = memory.Snapshot(2900.0, 0.0, 3965.0, 80.0, 81.0)
    after = memory.Snapshot(2450.4, 10.0, 3965.0, 520.0, 530.0)
    assert memory.format_change(before, after, "engine loaded") == (
        "engine loaded: available 2900 -> 2450 MiB (-450), RSS 80 -> 520 MiB (peak 530)")
    assert after.as_dict()["available_mib"] == 2450.4
