"""Writing files so that a reader never sees half of one, and naming files alike everywhere.

Python 3.6, standard library only.
"""
import contextlib
import hashlib
import os


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """A temporary path beside ``path``; it replaces ``path`` only when the block succeeds.

    The block writes the temporary file (with any library); the file is flushed to disk
    before the rename, and removed when the block fails, so ``path`` is either the old file
    or the complete new one. ``suffix`` keeps an extension a writer insists on (``.npz``).
    """
    tmp = "{}.tmp{}{}".format(path, os.getpid(), suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
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


def write_bytes_atomic(path, data):
    """Write bytes (an engine, a timing cache) atomically, creating the folder if needed."""
    directory = os.path.dirname(path)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory)
    with atomic_path(path) as tmp:
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
