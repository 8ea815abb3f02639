"""Writing files so that a reader never sees half of one, and naming files alike everywhere.

Python 3.6, standard library only.
"""
import contextlib
import errno
import hashlib
import os
import re
import tempfile

from nanoseg.errors import NanosegError


@contextlib.contextmanager
def atomic_path(path, suffix="", sync=True):
    """A temporary path beside ``path``; it replaces ``path`` only when the block succeeds.

    The block writes the temporary file (with any library); the file is flushed to disk
    before the rename (``sync=False``: not, for many small files written at camera rate), and
    removed when the block fails, so ``path`` is either the old file or the complete new
    one. ``suffix`` keeps an extension a writer insists on (``.npz``).
    """
    tmp = "{}.tmp{}{}".format(path, os.getpid(), suffix)
    try:
        yield tmp
        if sync:
            _fsync(tmp)
        os.replace(tmp, path)
    except (IOError, OSError) as exc:
        if exc.errno is None or exc.filename:
            raise
        # a full disk's error from write() names no file: name the one being written
        raise OSError(exc.errno, exc.strerror, path)
    finally:
        if os.path.lexists(tmp):
            os.remove(tmp)


def _fsync(path):
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def write_text_atomic(path, text):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write(text)


def write_text_for_flag(path, text, flag):
    """:func:`write_text_atomic` for a file the user named with ``flag`` (``--summary``): a
    failed write (disk full, folder gone) is a one-line error naming both."""
    try:
        write_text_atomic(path, text)
    except (IOError, OSError) as exc:
        raise NanosegError("cannot write {} {}: {}".format(flag, path, exc.strerror or exc))


def check_writable(path, flag, folder=False):
    """A one-line error naming ``flag`` and ``path`` unless the run will be able to write it.

    Called before the slow work (loading a model, opening a camera) so a typo costs seconds,
    not a whole run. ``folder=False``: ``path`` is a file whose folder must exist;
    ``folder=True``: ``path`` is a folder, made with its missing parents if need be. The
    folder that will hold the new entry gets a temporary file created and removed: only a
    real write tells a read-only mount, a full quota or missing permissions apart (and
    permission bits do not stop root).
    """
    path = str(path)
    target = os.path.abspath(path)
    if folder:
        if os.path.exists(target) and not os.path.isdir(target):
            raise NanosegError("{} {} is a file: name a folder".format(flag, path))
        while not os.path.exists(target):  # the nearest existing ancestor gets the entries
            target = os.path.dirname(target)
    else:
        if os.path.isdir(target):
            raise NanosegError("{} {} is a folder: name a file".format(flag, path))
        target = os.path.dirname(target)
        if not os.path.lexists(target):
            raise NanosegError("{} folder {} does not exist: create it first".format(
                flag, target))
    if not os.path.isdir(target):
        raise NanosegError("{} {}: {} is not a folder".format(flag, path, target))
    try:
        handle, probe = tempfile.mkstemp(prefix=".nanoseg-write-check-", dir=target)
    except (IOError, OSError) as exc:
        raise NanosegError("{} {}: cannot write into folder {} ({}): pick a writable "
                           "one".format(flag, path, target, exc.strerror or exc))
    os.close(handle)
    os.remove(probe)


# A write that failed for want of room or permission, by errno or, from libraries that only
# keep the message (h5py, TensorFlow's file system), by its strerror text.
WRITE_ERRNOS = (errno.ENOSPC, errno.EROFS, errno.EDQUOT)
WRITE_ERROR_TEXTS = ("No space left on device", "Read-only file system", "Disk quota exceeded")
QUOTED_PATH = re.compile(r"""(?:name = |file |path )?['"](/[^'"]+)['"]""")


def write_failure(exc, path=None):
    """``cannot write PATH: No space left on device: free space ...`` for an exception of any
    library that failed to write for want of room or permission, or None for any other.
    ``path``: what was being written, when the exception does not say."""
    text = str(exc)
    reason = os.strerror(exc.errno) if getattr(exc, "errno", None) in WRITE_ERRNOS else \
        next((t for t in WRITE_ERROR_TEXTS if t in text), None)
    if reason is None:
        return None
    path = getattr(exc, "filename", None) or path
    if not path:
        found = QUOTED_PATH.search(text)
        path = found.group(1) if found else "a file"
    return "cannot write {}: {}: free space there (or make it writable) and run again".format(
        path, reason)


def write_bytes_atomic(path, data, sync=True):
    """Write bytes (an engine, a timing cache) atomically, creating the folder if needed."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with atomic_path(path, sync=sync) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(memoryview(data))
    return path


def sample_name(path, folder):
    """The name of image file ``path`` under ``folder``: its relative path without extension,
    with "/" on every system ("day1/x"). Training's readers pair and sort a folder's files by
    it, and the edge's folder source names and orders its frames by it (plain string order:
    "a-b/x" before "a/x"), so both list one folder alike."""
    relative = os.path.relpath(path, folder).replace(os.sep, "/")
    return os.path.splitext(relative)[0]


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
