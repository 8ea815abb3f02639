"""Keras 2 for segmentation_models, set up before TensorFlow is imported.

segmentation_models 1.0.1 runs only on Keras 2: TF 2.15 bundles it; TF >= 2.16 needs the
``tf-keras`` package and ``TF_USE_LEGACY_KERAS=1`` *before* TensorFlow is imported, and
``SM_FRAMEWORK=tf.keras`` must be set before segmentation_models is imported
(``set_framework()`` is too late). CLIs call :func:`prepare` first thing; library code gets
segmentation_models through :func:`import_segmentation_models`.

TensorFlow 2.15's CPU wheels print three "E ... Unable to register cuDNN/cuFFT/cuBLAS
factory" lines from C++ static initialisers while ``import tensorflow`` loads its shared
library: to file descriptor 2, at ERROR level (``TF_CPP_MIN_LOG_LEVEL=2`` keeps them; 3
would hide real errors too). :func:`prepare` therefore makes the first ``import
tensorflow`` run with descriptor 2 piped through a line filter that passes every other line
on as it is written.
"""
import contextlib
import importlib
import importlib.abc
import importlib.util
import os
import re
import logging
import subprocess
import sys

from nanoseg.errors import NanosegError

KERAS2_ENV = {
    "SM_FRAMEWORK": "tf.keras",
    "NO_ALBUMENTATIONS_UPDATE": "1",   # albumentations >= 1.4 phones home on import otherwise
    "TF_CPP_MIN_LOG_LEVEL": "2",
}

LOG = logging.getLogger(__name__)


# The C++ lines of a duplicate CUDA plugin registration: harmless, on every CPU machine.
DUPLICATE_FACTORY_LINE = re.compile(
    r"Unable to register (cuDNN|cuFFT|cuBLAS) factory: Attempting to register factory for "
    r"plugin \w+ when one has already been registered")


def prepare(environ=None):
    """Set the variables Keras 2 + segmentation_models need (existing values win), and
    keep TensorFlow's duplicate-factory lines out of the first ``import tensorflow``.

    TF_USE_LEGACY_KERAS=1 only where the tf-keras package is installed (TF >= 2.16): on TF
    2.15 without it, that variable makes ``tf.keras`` fail with "Keras cannot be imported".
    """
    environ = os.environ if environ is None else environ
    for key, value in KERAS2_ENV.items():
        environ.setdefault(key, value)
    if importlib.util.find_spec("tf_keras") is not None:
        environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    if "tensorflow" not in sys.modules and not any(
            isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


# Runs in a child interpreter (-S -E: no site, no environment) that filters its stdin line by
# line to its stdout. A child, not a thread: when the parent aborts or segfaults mid-import,
# the kernel closes the pipe's write end and the child still forwards every byte already
# written, where a thread would die with the unread rest.
_FILTER_CHILD = """
import os, re
noise = re.compile({pattern!r}.encode())
pending = b''
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    lines = (pending + chunk).split(b'\\n')
    pending = lines.pop()
    for line in lines:
        if not noise.search(line):
            os.write(1, line + b'\\n')
if pending and not noise.search(pending):
    os.write(1, pending)
"""


@contextlib.contextmanager
def filtered_stderr_fd():
    """Route file descriptor 2 (C++ writes there directly) through a filter, live.

    Every line but the duplicate-factory ones reaches the real stderr as it is written, also
    when the body raises or the process crashes. Where stderr cannot be duplicated (fd 2
    closed, ``sys.stderr`` None, no interpreter to start) the body runs unfiltered.
    """
    saved = _duplicate_stderr()
    if saved is None:
        yield
        return
    try:
        child, write_end = _start_filter(saved)
    except OSError as exc:
        LOG.debug("stderr filter not started (%s): TensorFlow's output unfiltered", exc)
        os.close(saved)
        yield
        return
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)          # the pipe's last write end closes: the filter sees EOF
        os.close(saved)
        _wait_for_filter(child)


def _duplicate_stderr():
    """A duplicate of fd 2 after flushing ``sys.stderr``, or None where there is none."""
    if sys.stderr is None or not sys.executable:
        return None
    try:
        sys.stderr.flush()
        return os.dup(2)
    except (OSError, ValueError):
        return None


def _start_filter(output_fd):
    """The filter child writing to ``output_fd``, and the write end of its input pipe."""
    read_end, write_end = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-S", "-E", "-c",
             _FILTER_CHILD.format(pattern=DUPLICATE_FACTORY_LINE.pattern)],
            stdin=read_end, stdout=output_fd, stderr=output_fd, close_fds=True)
    except OSError:
        os.close(write_end)
        raise
    finally:
        os.close(read_end)
    return child, write_end


def _wait_for_filter(child):
    """Let the filter drain; a grandchild still holding fd 2 must not hang the import."""
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        LOG.debug("stderr filter still running after the import; left to finish alone")


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once and wraps its loader in :func:`filtered_stderr_fd`."""

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)     # one shot; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader)
        return spec


class _FilteredLoader(importlib.abc.Loader):
    """Delegates to the real loader; runs the package's __init__ with stderr filtered."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def __getattr__(self, name):       # get_filename, is_package, resource readers...
        return getattr(self.loader, name)

    def exec_module(self, module):
        module.__loader__ = self.loader    # afterwards tensorflow looks normally loaded
        module.__spec__.loader = self.loader
        with filtered_stderr_fd():
            self.loader.exec_module(module)


def keras_version(tf):
    """The version of the Keras behind ``tf.keras`` (TF 2.15's tf.keras has no __version__)."""
    version = getattr(tf.keras, "__version__", None)
    if version:
        return str(version)
    package = importlib.import_module(tf.keras.__name__.split(".")[0])
    return str(getattr(package, "__version__", "?"))


def import_segmentation_models():
    """Import segmentation_models on Keras 2, or explain in one line why it cannot run."""
    prepare()
    import tensorflow as tf
    version = keras_version(tf)
    if not version.startswith("2."):
        raise NanosegError(
            "TensorFlow {} gives Keras {}, but segmentation_models needs Keras 2: install "
            "tensorflow==2.15.1, or tf-keras and set TF_USE_LEGACY_KERAS=1 before starting "
            "Python".format(tf.__version__, version))
    with contextlib.redirect_stdout(sys.stderr):  # its import banner is not CLI output
        import segmentation_models as sm
    return sm
