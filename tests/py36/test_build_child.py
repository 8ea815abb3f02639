"""convert/build_child.py and convert/build_progress.py: the engine build in a child process
on the stand-in TensorRT modules (tests/tensorrt_standin.py): its progress lines, its error
coming back as one line, and a SIGKILL explained (out of memory or not)."""
import os
import signal

import pytest

from convert import build_child
from convert.build_progress import BuildProgress, format_elapsed
from edge.tensorrt import engines
from nanoseg import memory
from nanoseg.bundle import ONNX
from nanoseg.errors import NanosegError
from tests import tensorrt_standin as standin

OOM = ("the build ran out of memory (killed by SIGKILL, 50 MiB available at the lowest, swap "
       "used 900 MiB): add swap (setup.sh --swap 4), lower --workspace (now 256 MiB), stop "
       "other processes")


def request_for(bundle, **extra):
    request = {"onnx": bundle.path(ONNX), "fp16": True, "device": "Stand-in GPU",
               "workspace_mib": 256, "tactic_sources": "", "fp32_layers": [],
               "warned_layers": [], "progress_every": 30.0,
               "timing_cache": engines.timing_cache_path(bundle, "x", "Stand-in GPU")}
    request.update(extra)
    return request


def child_env(tmp_path, api="8", **extra):
    folder = tmp_path / "stand-ins-{}".format(api)
    modules = str(folder) if folder.exists() else standin.write_modules(folder, api=api)
    return dict(os.environ, PYTHONPATH=modules, **extra)


def test_a_sigkill_with_memory_near_zero_is_explained_as_out_of_memory():
    assert build_child.explain_exit(-signal.SIGKILL, 50.0, 3965.0, 900.0, 256) == OOM
    spare = build_child.explain_exit(-signal.SIGKILL, 1500.0, 3965.0, 0.0, 256)
    assert spare.startswith("the build was killed (SIGKILL) with memory to spare (1500 MiB "
                            "available at the lowest")
    assert build_child.explain_exit(-signal.SIGTERM, 50.0, 3965.0, 0.0, 256) == \
        "the engine build was stopped by signal {}".format(int(signal.SIGTERM))
    assert build_child.explain_exit(1, 50.0, 3965.0, 0.0, 256) is None


def test_a_child_killed_while_memory_ran_out_says_so_in_one_line(bundle, tmp_path):
    low = lambda: (50.0, 900.0, 3965.0)  # noqa: E731  what /proc/meminfo said meanwhile
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(NanosegError) as info:
        build_child.build_in_child(request_for(bundle), str(work),
                                   env=child_env(tmp_path, FAKE_TRT_BUILD_KILL="1"),
                                   read_system=low)
    assert str(info.value) == OOM
    assert os.listdir(str(work)) == []   # request, plan, result removed


def test_the_child_builds_and_its_errors_come_back_as_one_line(bundle, tmp_path):
    plan, result, watch = build_child.build_in_child(request_for(bundle), str(tmp_path),
                                                     env=child_env(tmp_path))
    assert plan == b"plan:8.2.1.8:fp16:1" and result["precision"] == "fp16"
    assert result["fp32_layers"] == [] and result["peak_rss_mib"] > 0
    assert watch.lowest_mib is None or watch.lowest_mib > 0
    with pytest.raises(NanosegError) as info:
        build_child.build_in_child(request_for(bundle, fp32_layers=["decoder*"]),
                                   str(tmp_path), env=child_env(tmp_path))
    assert str(info.value) == (
        "--fp32-layers decoder* matches no layer of the network (its layers are named after "
        "the ONNX nodes, e.g. relu1, up1, concat1, final_conv, sigmoid, to_nhwc): change "
        "the pattern")


def test_the_child_prints_progress_lines_and_tensorrt_phases(bundle, tmp_path, capfd):
    env = child_env(tmp_path, api="10", FAKE_TRT_STEP_SECONDS="0.4")
    build_child.build_in_child(request_for(bundle, progress_every=0.3), str(tmp_path),
                               env=env)
    out = capfd.readouterr().out
    assert "TensorRT reports its build phases below" in out
    assert "[build] TensorRT: Building engine (2 steps)" in out
    lines = [line for line in out.splitlines() if line.startswith("[build] ") and "RSS" in line]
    assert lines, out
    assert "available" in lines[0] and "swap used" in lines[0]
    assert any("; TensorRT: Building engine 0/2 > Tactic timing" in line for line in lines), out


def test_progress_lines_have_elapsed_time_memory_and_the_phases():
    now = [100.0]
    lines = []
    snap = memory.Snapshot(812.0, 300.0, 3965.0, 1200.0, 1300.0)
    progress = BuildProgress(30, out=lines.append, clock=lambda: now[0],
                             read_memory=lambda: snap)
    progress.started = 100.0
    now[0] = 190.0
    assert progress.line() == ("[build] 1m30s: RSS 1200 MiB (peak 1300), available 812 MiB, "
                               "swap used 300 MiB")
    progress.phase_start("Building engine", None, 4)
    progress.phase_start("Tactic timing", "Building engine", 57)
    progress.step_complete("Tactic timing", 11)
    assert progress.line().endswith("; TensorRT: Building engine 0/4 > Tactic timing 12/57")
    progress.phase_finish("Tactic timing")
    assert progress.phases() == "Building engine 0/4"
    assert lines == ["[build] TensorRT: Building engine (4 steps)"]  # top-level phases only
    assert format_elapsed(59.9) == "59s" and format_elapsed(600) == "10m00s"
