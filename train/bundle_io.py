"""Writing a bundle so that a crash never leaves a folder that looks complete.

Training works in a sibling folder ``<out>.partial`` (checkpoints, TensorBoard logs, the CSV
log, the resume state) and only a finished run renames it to ``<out>``; a rename on one file
system is atomic, so ``<out>`` either holds a whole bundle or the previous one. The partial
folder survives a crash on purpose: ``--resume`` continues from it. It records its owner
(pid + host): while that process lives, every other run on the same --out is refused
(plain, --resume and --overwrite alike), and a leftover with no finished epoch is removed
by the next run only once that process is gone.

No TensorFlow here: the checks run before any model is built.
"""
import json
import logging
import os
import shutil
import socket
import tempfile

from nanoseg import bundle as bundle_names
from nanoseg.bundle import (CHECKPOINTS_DIR, CONTRACT_JSON, LAST_WEIGHTS, LOGS_DIR, MODEL_H5,
                            OWNER_JSON, PARTIAL_SUFFIX, STATE_JSON, Bundle)
from nanoseg.contract import load_contract
from nanoseg.files import write_text_atomic
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)



def partial_dir(out):
    """The working folder of a bundle being trained: ``<out>.partial`` beside it."""
    return os.path.abspath(str(out)).rstrip(os.sep) + PARTIAL_SUFFIX


def checkpoint_path(work_dir, name):
    """A file inside the work folder's checkpoints/ (created on demand)."""
    folder = os.path.join(work_dir, CHECKPOINTS_DIR)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    return os.path.join(folder, name)


def check_out_dir(out, contract, overwrite=False):
    """Refuse an --out that holds something we must not replace.

    An empty or absent folder is fine; a bundle of the *same* model (compatible contract,
    same backbone) is replaced when the new run finishes; anything else needs --overwrite.
    """
    out = os.path.abspath(str(out))
    if overwrite or not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise NanosegError("--out {} is a file, not a folder: choose another --out".format(out))
    if not os.listdir(out):
        return
    contract_file = os.path.join(out, CONTRACT_JSON)
    if not os.path.isfile(contract_file):
        raise NanosegError("--out {} exists and is not a nanoseg bundle: choose another --out "
                           "or pass --overwrite to replace it".format(out))
    existing = load_contract(contract_file)
    if existing.backbone != contract.backbone:
        raise NanosegError("--out {} holds a bundle of another model (backbone {} vs {}): "
                           "choose another --out or pass --overwrite".format(
                               out, existing.backbone, contract.backbone))
    try:
        existing.check_compatible(contract, "new model")
    except NanosegError as exc:
        raise NanosegError("--out {} holds a bundle of another model ({}): choose another "
                           "--out or pass --overwrite".format(out, exc))
    LOG.warning("--out %s holds a bundle of the same model: it is replaced when this run "
                "finishes", out)


def open_work_dir(out, resume=False, overwrite=False):
    """The folder this run writes into, ready for checkpoints.

    ``resume``: continue ``<out>.partial`` (a crashed run), or else a finished bundle's
    checkpoints (train it for more epochs; the bundle stays intact until the new one is
    complete). Without it a leftover partial folder is an error unless ``overwrite``.
    """
    work = partial_dir(out)
    if os.path.exists(work) and not os.path.isdir(work):
        raise NanosegError("{} is a file, not an interrupted run: remove it or choose another "
                           "--out".format(work))
    check_not_running(work)
    if resume:
        if os.path.isfile(os.path.join(work, CHECKPOINTS_DIR, STATE_JSON)):
            LOG.info("resuming the interrupted run in %s", work)
            _write_owner(work)
            return work
        done = Bundle(out)
        if os.path.isfile(done.path(os.path.join(CHECKPOINTS_DIR, STATE_JSON))):
            if os.path.exists(work):
                shutil.rmtree(work)
            shutil.copytree(done.root, work)
            LOG.info("resuming from the finished bundle %s (copied to %s)", done.root, work)
            _write_owner(work)
            return work
        raise NanosegError("--resume: no checkpoint to resume in {} or {}: train without "
                           "--resume first".format(work, done.root))
    if os.path.exists(work) and _abandoned_before_first_epoch(work):
        LOG.info("removing %s: a run that failed before finishing its first epoch", work)
        shutil.rmtree(work)
    if os.path.exists(work):
        if not overwrite:
            raise NanosegError("{} holds an interrupted run: pass --resume to continue it or "
                               "--overwrite to start over".format(work))
        shutil.rmtree(work)
    os.makedirs(os.path.join(work, CHECKPOINTS_DIR))
    _write_owner(work)
    return work


def _abandoned_before_first_epoch(work):
    """True for a work folder safe to delete unasked: no epoch finished, its owner process
    is gone from this host, and it holds only what nanoseg writes there."""
    return (not _epochs_done(work) and _owner_is_gone(work)
            and set(os.listdir(work)) <= _NANOSEG_WORK_ENTRIES)


_NANOSEG_WORK_ENTRIES = frozenset(
    [CHECKPOINTS_DIR, LOGS_DIR, OWNER_JSON, CONTRACT_JSON] +
    [value for name, value in vars(bundle_names).items()
     if name.isupper() and isinstance(value, str)])


def _write_owner(work):
    write_text_atomic(os.path.join(work, OWNER_JSON), json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname()}, sort_keys=True) + "\n")


def check_not_running(work):
    """Refuse a work folder whose training is still running, whatever the flags.

    Resuming or overwriting a live run corrupts both (the second deletes or rewrites the
    first one's checkpoints), so the message names the run and offers only safe ways out.
    """
    owner = _read_owner(work)
    if owner is None or owner["pid"] == os.getpid():
        return
    pid, host = owner["pid"], owner["host"]
    if host != socket.gethostname():
        raise NanosegError("{} belongs to a training run on host {} (pid {}): wait for it to "
                           "finish or choose another --out (if that run has stopped, delete "
                           "{})".format(work, host, pid, os.path.join(work, OWNER_JSON)))
    if process_is_alive(pid):
        raise NanosegError("{} belongs to a training that is still running (pid {} on {}): "
                           "wait for it to finish or choose another --out".format(
                               work, pid, host))


def _read_owner(work):
    """{"pid": int, "host": str} recorded in a work folder, or None (none or unreadable)."""
    try:
        with open(os.path.join(work, OWNER_JSON)) as handle:
            owner = json.load(handle)
        return {"pid": int(owner["pid"]), "host": str(owner["host"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _owner_is_gone(work):
    """The recorded owner process is not alive on this host (unknown owner: not gone)."""
    owner = _read_owner(work)
    if owner is None or owner["host"] != socket.gethostname():
        return False
    return not process_is_alive(owner["pid"])


def process_is_alive(pid):
    """Whether process ``pid`` exists on this machine (ours or another user's)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _epochs_done(work):
    """Epochs a partial folder holds (0: nothing worth a --resume or an --overwrite)."""
    if not os.path.isfile(os.path.join(work, CHECKPOINTS_DIR, STATE_JSON)):
        return 0
    try:
        return int(read_state(work).get("epochs_done", 0))
    except (NanosegError, TypeError, ValueError):
        return 1      # a damaged state: keep it, the user decides (--overwrite)


def temporary_work_dir():
    """A throw-away work folder for a non-chief worker (only the chief writes the bundle)."""
    work = tempfile.mkdtemp(prefix="nanoseg-worker-")
    os.makedirs(os.path.join(work, CHECKPOINTS_DIR))
    return work


def read_state(work_dir):
    """The resume state ({"epochs_done": 0} for a fresh run)."""
    path = os.path.join(work_dir, CHECKPOINTS_DIR, STATE_JSON)
    if not os.path.isfile(path):
        return {"epochs_done": 0, "best": None}
    try:
        with open(path) as handle:
            return json.load(handle)
    except ValueError as exc:
        raise NanosegError("resume state {} is damaged ({}): pass --overwrite to start "
                           "over".format(path, exc))


def write_state(work_dir, epochs_done, best, extra=None):
    """Record what --resume needs, atomically (a crash mid-write keeps the old state)."""
    state = {"epochs_done": int(epochs_done), "best": None if best is None else float(best),
             "last_weights": LAST_WEIGHTS}
    state.update(extra or {})
    write_text_atomic(checkpoint_path(work_dir, STATE_JSON),
                      json.dumps(state, indent=2, sort_keys=True) + "\n")


def publish(work_dir, out):
    """Make the finished work folder the bundle ``out`` with renames only.

    The old bundle (if any) is renamed aside first and deleted last, so at every instant
    ``out`` is either the old complete bundle, absent, or the new complete bundle.
    """
    out = os.path.abspath(str(out))
    if not os.path.isfile(os.path.join(work_dir, MODEL_H5)) or \
            not os.path.isfile(os.path.join(work_dir, CONTRACT_JSON)):
        raise RuntimeError("publish() called before model.h5 and contract.json were written")
    owner = os.path.join(work_dir, OWNER_JSON)
    if os.path.isfile(owner):        # a finished bundle has no owner process
        os.remove(owner)
    parent = os.path.dirname(out)
    if parent and not os.path.isdir(parent):
        os.makedirs(parent)
    old = None
    if os.path.exists(out):
        old = tempfile.mkdtemp(prefix=os.path.basename(out) + ".old-", dir=parent)
        os.rmdir(old)
        os.rename(out, old)
    os.rename(work_dir, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    LOG.info("bundle written: %s", out)
    return out
