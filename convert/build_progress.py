"""Progress lines while an engine builds (5-20 minutes on a Nano, silent otherwise).

:class:`BuildProgress` prints one line every ``every`` seconds: the time since the build
started, this process's memory, the system's available memory and swap, and - where
TensorRT has a progress monitor (9.1+; edge.tensorrt.compat.attach_progress_monitor) - the
phases it is in. It is the monitor's tracker too: TensorRT calls it from its own threads,
so its state is behind a lock. Python 3.6.
"""
import collections
import threading
import time

from nanoseg import memory


def format_elapsed(seconds):
    minutes, seconds = divmod(int(seconds), 60)
    return "{}m{:02d}s".format(minutes, seconds) if minutes else "{}s".format(seconds)


class BuildProgress(object):
    """A ticker thread (:meth:`start` / :meth:`stop`) and a TensorRT phase tracker."""

    def __init__(self, every=30.0, out=None, clock=time.time, read_memory=memory.snapshot):
        self.every, self.clock, self.read_memory = float(every), clock, read_memory
        self.out = out or (lambda line: print(line, flush=True))
        self._lock = threading.Lock()
        self._phases = collections.OrderedDict()   # name -> [steps done, steps]
        self._stop = threading.Event()
        self._thread = None
        self.started = clock()
        self.lines = 0

    # -- what TensorRT's IProgressMonitor reports ---------------------------------------
    def phase_start(self, phase_name, parent_phase, num_steps):
        with self._lock:
            self._phases[phase_name] = [0, int(num_steps)]
        if parent_phase is None:  # top-level phases are few: worth a line each
            self.out("[build] TensorRT: {} ({} steps)".format(phase_name, num_steps))

    def step_complete(self, phase_name, step):
        with self._lock:
            if phase_name in self._phases:
                self._phases[phase_name][0] = int(step) + 1

    def phase_finish(self, phase_name):
        with self._lock:
            self._phases.pop(phase_name, None)

    # -- the lines ---------------------------------------------------------------------------
    def phases(self):
        """``Building engine 1/2 > Tactic timing 12/57`` (outermost first), or ''."""
        with self._lock:
            return " > ".join("{} {}/{}".format(name, done, steps)
                              for name, (done, steps) in self._phases.items())

    def line(self):
        text = "[build] {}: {}".format(format_elapsed(self.clock() - self.started),
                                       memory.format_snapshot(self.read_memory()))
        phases = self.phases()
        return text + ("; TensorRT: " + phases if phases else "")

    def _run(self):
        while not self._stop.wait(self.every):
            self.out(self.line())
            self.lines += 1

    def start(self):
        self.started = self.clock()
        if self.every > 0:
            self._thread = threading.Thread(target=self._run, name="build-progress")
            self._thread.daemon = True
            self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
