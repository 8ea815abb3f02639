"""The engine build in a child process, and the parent's watch over it.

A Nano's 4 GB are shared by the CPU and the GPU; a build that runs out of them is killed by
the kernel (SIGKILL: no Python handler runs, the terminal only says "Killed"). Building in
a child lets the parent outlive that and say why in one line, and hands all the memory back
before the engine is loaded for its check. The child is a fresh interpreter (not a fork: a
CUDA context does not survive fork), started before the parent touches CUDA.

    python3 convert/build_child.py REQUEST.json     (run by convert/build_engine.py)

The request (convert/build_network.py) also names ``plan`` and ``result`` files for the
child to write, and ``progress_every`` (seconds between its progress lines). Python 3.6.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json
import os
import signal
import subprocess
import sys

from convert import build_network
from convert.build_progress import BuildProgress
from edge.tensorrt import compat as trt_compat
from nanoseg import memory
from nanoseg.errors import NanosegError

CHILD = os.path.abspath(__file__)
# Lowest MemAvailable that still counts as "ran out": the larger of these (a 4 GB Nano: 198)
OOM_FLOOR_MIB, OOM_FLOOR_SHARE = 128.0, 0.05
SAMPLE_SECONDS = 1.0


def explain_exit(returncode, lowest_mib, total_mib, swap_mib, workspace_mib):
    """One line for a child that ended without a result (None when nothing can be said)."""
    if returncode != -signal.SIGKILL:
        if returncode < 0:
            return "the engine build was stopped by signal {}".format(-returncode)
        return None
    floor = max(OOM_FLOOR_MIB, OOM_FLOOR_SHARE * (total_mib or 0))
    seen = "{:.0f} MiB available at the lowest, swap used {} MiB".format(
        lowest_mib, "?" if swap_mib is None else "{:.0f}".format(swap_mib)) \
        if lowest_mib is not None else "memory unknown"
    if lowest_mib is not None and lowest_mib <= floor:
        return ("the build ran out of memory (killed by SIGKILL, {}): add swap (setup.sh "
                "--swap 4), lower --workspace (now {} MiB), stop other processes".format(
                    seen, workspace_mib))
    return ("the build was killed (SIGKILL) with memory to spare ({}): something else "
            "killed it (a watchdog, kill -9); run it again".format(seen))


class Watch(object):
    """The lowest available memory, the most swap and the child's peak RSS seen."""

    def __init__(self):
        self.lowest_mib = self.total_mib = self.swap_mib = self.child_peak_mib = None

    def sample(self, pid, read_system=memory.system_memory):
        available, swap, total = read_system()
        self.total_mib = total
        if available is not None and (self.lowest_mib is None or available < self.lowest_mib):
            self.lowest_mib = available
        if swap is not None:
            self.swap_mib = max(swap, self.swap_mib or 0.0)
        peak = memory.process_memory(pid)[1]
        if peak is not None:
            self.child_peak_mib = peak


def build_in_child(request, work_dir, python=None, env=None, sample_seconds=SAMPLE_SECONDS,
                   read_system=memory.system_memory):
    """Run the build request in a child; -> (plan bytes, result dict, Watch).

    The child's output (progress, TensorRT's log) goes straight to ours. A NanosegError in
    the child comes back as the same one-line error; a SIGKILL is explained.
    """
    request = dict(request, plan=os.path.join(work_dir, ".build-{}.plan".format(os.getpid())),
                   result=os.path.join(work_dir, ".build-{}.json".format(os.getpid())))
    request_path = os.path.join(work_dir, ".build-{}.request.json".format(os.getpid()))
    with open(request_path, "w") as handle:
        json.dump(request, handle)
    watch = Watch()
    try:
        proc = subprocess.Popen([python or sys.executable, CHILD, request_path], env=env)
        try:
            while True:
                watch.sample(proc.pid, read_system)
                try:
                    proc.wait(timeout=sample_seconds)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except BaseException:  # Ctrl-C: the child got it too; do not leave it building
            proc.kill()
            proc.wait()
            raise
        result = None
        if os.path.isfile(request["result"]):
            with open(request["result"]) as handle:
                result = json.load(handle)
        if result is not None and result.get("error"):
            raise NanosegError(result["error"])
        if proc.returncode != 0 or result is None:
            raise NanosegError(explain_exit(proc.returncode, watch.lowest_mib,
                                            watch.total_mib, watch.swap_mib,
                                            request["workspace_mib"])
                               or "the engine build failed (exit {}): its output above says "
                                  "why".format(proc.returncode))
        with open(request["plan"], "rb") as handle:
            plan = handle.read()
        return plan, result, watch
    finally:
        for path in (request_path, request["plan"], request["result"]):
            if os.path.exists(path):
                os.remove(path)


def main(argv):
    with open(argv[0]) as handle:
        request = json.load(handle)
    try:
        trt = trt_compat.import_tensorrt()
        with BuildProgress(request.get("progress_every", 30.0)) as progress:
            plan, result = build_network.build(trt, request, progress)
        with open(request["plan"], "wb") as handle:
            handle.write(plan)
    except NanosegError as exc:  # the parent says it, once
        result = {"error": str(exc)}
    with open(request["result"], "w") as handle:
        json.dump(result, handle)
    return 2 if result.get("error") else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
