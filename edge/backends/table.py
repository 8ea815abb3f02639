"""The one table of backends: what each row runs, what opens it, what it needs.

A row is a format convert/validate.py measures (``--formats``) and, when it has a
``backend`` name, a ``--backend`` choice of edge/run_camera.py and edge/benchmark.py.
Openers are named ``"module:attribute"`` and imported only when the row is used: the Keras
opener lives in train/ (the desktop's training layer), so edge never imports train, and on
the Jetson (no train/ deployed) that row is unavailable with a one-line reason.

Adding a backend = its module (a :class:`edge.backends.base.Backend`) + one row in ``ROWS``.
"""
import importlib
import logging

from edge.backends.base import as_bundle
from nanoseg.bundle import ENGINES_DIR, MODEL_H5, ONNX, ONNX_FP16
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

AUTO = "auto"
AUTO_HELP = "auto: a matching TensorRT engine when tensorrt imports, else ONNX Runtime"


class Unavailable(Exception):
    """A row that cannot run on this machine (missing artifact or library), with the reason."""


class BackendRow(object):
    """One backend/format.

    ``name``: the format (validate --formats); ``backend``: the --backend choice, or None;
    ``artifact``: the bundle file it runs, ``artifact_hint``: how to make it; ``opener``:
    ``"module:attribute"`` called as ``opener(bundle, **kwargs)`` with ``fixed`` and the open
    options named in ``takes`` (``device``, ``engine_path``); ``opener_hint``: what a failing
    import of the opener's module means; ``prepare``: ``"module:function"`` run before the
    libraries are imported; ``needs``: ((library, hint), ...) that must import;
    ``locate``: ``"module:function"`` (bundle, engine_path) -> (path, None) or (None, why),
    for artifacts that are searched (after ``needs``); ``probe``: ``"module:function"``
    (bundle) -> an artifact path or None, whether ``--backend auto`` takes this row;
    ``auto``: the row's place in what ``--backend auto`` tries (lowest first; None: never).
    """

    def __init__(self, name, artifact, opener, help, backend=None, artifact_hint="",
                 takes=(), fixed=None, opener_hint="", prepare=None, needs=(), locate=None,
                 probe=None, auto=None):
        self.name, self.artifact, self.opener, self.help = name, artifact, opener, help
        self.backend, self.artifact_hint = backend, artifact_hint
        self.takes, self.fixed = tuple(takes), dict(fixed or {})
        self.opener_hint, self.prepare, self.needs = opener_hint, prepare, tuple(needs)
        self.locate, self.probe, self.auto = locate, probe, auto

    def __repr__(self):
        return "BackendRow({!r}, backend={!r})".format(self.name, self.backend)


EXPORT_HINT = "run convert/export_onnx.py --bundle BUNDLE"
ONNXRUNTIME = "edge.backends.onnxruntime_backend:OnnxRuntimeBackend"

ROWS = [
    BackendRow("keras", MODEL_H5, "train.keras_backend:KerasBackend", backend="keras",
               help="Keras model.h5 (desktop only: train/ and TensorFlow)",
               artifact_hint="train/train.py writes it",
               opener_hint="train/ stays on the desktop, where Keras runs",
               prepare="train.keras_env:prepare",
               needs=[("tensorflow", "on the Jetson the golden outputs are the reference")]),
    BackendRow("onnx", ONNX, ONNXRUNTIME, backend="onnxruntime", takes=["device"], auto=2,
               help="ONNX Runtime on model.onnx (CPU, or CUDA with onnxruntime-gpu)",
               artifact_hint=EXPORT_HINT, needs=[("onnxruntime", "pip install onnxruntime")]),
    BackendRow("onnx-fp16", ONNX_FP16, ONNXRUNTIME, takes=["device"],
               fixed={"onnx_name": ONNX_FP16},
               help="ONNX Runtime on the FP16 copy model_fp16.onnx",
               artifact_hint=EXPORT_HINT, needs=[("onnxruntime", "pip install onnxruntime")]),
    BackendRow("tensorrt", ENGINES_DIR, "edge.tensorrt.backend:TensorRTBackend",
               backend="tensorrt", takes=["engine_path"],
               help="a TensorRT engine from BUNDLE/engines built by convert/build_engine.py "
                    "(Jetson: tensorrt + pycuda)",
               needs=[("tensorrt", "JetPack provides it on the Jetson"),
                      ("pycuda.driver", "JetPack + jetson/setup.sh provide it")],
               locate="edge.tensorrt.backend:locate_engine",
               probe="edge.tensorrt.backend:auto_engine", auto=1),
]


def auto_rows():
    """What --backend auto tries, in order (rows' ``auto``): the first row whose probe finds
    its artifact (a row without a probe always can)."""
    return sorted((row for row in ROWS if row.auto is not None), key=lambda row: row.auto)


def formats():
    """Every row's format name, in table order (convert/validate.py --formats)."""
    return tuple(row.name for row in ROWS)


def backends():
    """``auto`` and every row's --backend name (edge/run_camera.py, edge/benchmark.py)."""
    return (AUTO,) + tuple(row.backend for row in ROWS if row.backend)


def backend_help():
    """--backend help: what auto does, then each choice."""
    return "; ".join([AUTO_HELP] + ["{}: {}".format(row.backend, row.help)
                                    for row in ROWS if row.backend])


def format_help():
    """--formats help: each format."""
    return "; ".join("{}: {}".format(row.name, row.help) for row in ROWS)


def find_row(name):
    """The row whose --backend name or format name is ``name``."""
    for row in ROWS:
        if name in (row.backend, row.name):
            return row
    raise NanosegError("unknown backend or format {!r}: use one of {}".format(
        name, ", ".join(backends()[1:] + formats())))


def _attribute(spec):
    """``"module:attribute"`` -> the attribute (ImportError when the module does not import)."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _import_reason(module, hint, exc):
    return "{} does not import here ({}){}".format(
        module, (str(exc).splitlines() or [type(exc).__name__])[0],
        "; " + hint if hint else "")


def _require(module, hint):
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken CUDA/TF install raising otherwise
        raise Unavailable(_import_reason(module, hint, exc))


def check_row(row, bundle, engine_path=None):
    """The artifact path when ``row`` can run here, else Unavailable with the reason.

    Checks the artifact (a bundle file first: no library import for a missing file), the
    opener's module, ``prepare``, each library in ``needs``, then a searched artifact.
    Nothing is loaded.
    """
    bundle = as_bundle(bundle)
    path = None
    if row.locate is None:
        if not bundle.has(row.artifact):
            raise Unavailable("{} is not in the bundle: {}".format(
                row.artifact, row.artifact_hint.replace("BUNDLE", bundle.root)))
        path = bundle.path(row.artifact)
    _require(row.opener.partition(":")[0], row.opener_hint)
    if row.prepare:
        _attribute(row.prepare)()
    for module, hint in row.needs:
        _require(module, hint)
    if row.locate is not None:
        path, reason = _attribute(row.locate)(bundle, engine_path)
        if path is None:
            raise Unavailable(reason)
    return path


def unavailable_reason(row, bundle, engine_path=None):
    """None when ``row`` can run here, else why not (one line)."""
    try:
        check_row(row, bundle, engine_path)
    except Unavailable as exc:
        return str(exc)
    return None


def _open(row, bundle, device, engine_path):
    kwargs = dict(row.fixed)
    options = {"device": device, "engine_path": engine_path}
    kwargs.update((name, options[name]) for name in row.takes)
    name = row.backend or row.name
    try:
        opener = _attribute(row.opener)
    except ImportError as exc:
        raise NanosegError("--backend {} cannot run here: {}".format(
            name, _import_reason(row.opener.partition(":")[0], row.opener_hint, exc)))
    if row.locate is not None and kwargs.get("engine_path") is None:
        _check_needs(row, name)
    return opener(bundle, **kwargs)


def _check_needs(row, name):
    """A one-line error naming every library in ``needs`` that does not import. For rows
    whose artifact is searched: the search needs the libraries (an engine must match the
    TensorRT here), so without them the opener would blame the artifact instead. A given
    --engine is still checked against the bundle first, which needs no library."""
    if row.prepare:
        _attribute(row.prepare)()
    missing = []
    for module, hint in row.needs:
        try:
            _require(module, hint)
        except Unavailable as exc:
            missing.append(str(exc))
    if missing:
        raise NanosegError("--backend {} cannot run here: {}".format(name, "; ".join(missing)))


def open_row(row, bundle, device="cpu", engine_path=None):
    """(backend, artifact path) for ``row``; Unavailable when it cannot run here.

    A NanosegError (the artifact exists and its libraries import, but loading fails) is
    left to the caller: that is a broken artifact, not a missing one.
    """
    bundle = as_bundle(bundle)
    path = check_row(row, bundle, engine_path)
    return _open(row, bundle, device, path if "engine_path" in row.takes else engine_path), path


def _auto_row(bundle, engine_path):
    """(row, engine path or None) for ``--backend auto``."""
    for row in auto_rows():
        if engine_path is not None and "engine_path" in row.takes:
            return row, engine_path
        if row.probe is None:
            return row, engine_path
        found = _attribute(row.probe)(bundle)
        if found is not None:
            return row, found
    raise NanosegError("--backend auto found no backend that runs here: name one with "
                       "--backend")


def load_backend(bundle_dir, backend=AUTO, device="cpu", engine_path=None):
    """The backend named ``backend`` for the bundle (``auto``: a matching engine, else ORT)."""
    bundle = as_bundle(bundle_dir)
    bundle.contract()  # a missing bundle or contract is the first error the user sees
    if backend not in backends():
        raise NanosegError("--backend must be one of {}, got {!r}".format(backends(), backend))
    if backend == AUTO:
        row, engine_path = _auto_row(bundle, engine_path)
    else:
        row = find_row(backend)
        if engine_path is not None and "engine_path" not in row.takes:
            raise NanosegError("--engine is a TensorRT engine, not used by --backend {}: use "
                               "--backend {} with it, or drop --engine".format(
                                   backend, " or ".join(
                                       [r.backend for r in ROWS
                                        if r.backend and "engine_path" in r.takes] + [AUTO])))
    chosen = _open(row, bundle, device, engine_path)
    LOG.info("backend: %s", chosen.describe())
    return chosen
