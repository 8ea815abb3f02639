"""SIGTERM and Ctrl-C as a clean stop of a run (the outputs are drained and finalized)."""
import logging
import signal
import threading

LOG = logging.getLogger("run_camera")


def install_stop_handler(stop_event):
    """SIGTERM (systemd, docker stop, kill) -> a clean stop, like Ctrl-C but quieter.

    Only the first signal stops: the first SIGINT raises KeyboardInterrupt (it also ends a
    model load), the first SIGTERM sets ``stop_event``. Any later SIGINT or SIGTERM, and any
    signal once ``stop_event`` is set (run_pipeline sets it before it drains the outputs,
    also at the end of a source), only logs "already stopping": a Ctrl-C must not abandon
    the drain of the outputs (that would leave an unplayable video). Returns a function that puts the previous
    handlers back (main() is also called in-process, by tests).
    """
    stopping, previous = [], {}

    def handler(signum, _frame):
        if stopping or stop_event.is_set():  # set too once the pipeline drains its outputs
            LOG.warning("signal %d: already stopping (finishing the outputs)", signum)
            return
        stopping.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        LOG.warning("signal %d: stopping cleanly", signum)
        stop_event.set()
    if threading.current_thread() is threading.main_thread():
        previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, handler)
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            # not when Ctrl-C is ignored (nohup, a background job)
            previous[signal.SIGINT] = signal.signal(signal.SIGINT, handler)

    def restore():
        for signum, old_handler in previous.items():
            signal.signal(signum, old_handler)
    return restore
