"""nanoseg: the shared core every layer imports (Python 3.6, numpy + OpenCV only).

The contract and preprocessing, the bundle, dataset readers, metrics, parity checks,
timing, errors and the command-line helpers. Nothing here imports edge/, train/, convert/
or tools/ (but :func:`load`, the Python API's entry point, inside the function); nothing
here acts on import.
"""
from nanoseg.errors import NanosegError

__all__ = ["NanosegError", "load"]


def load(bundle, backend="auto", device="cpu", engine=None, alpha=0.5):
    """A Segmenter (edge/segmenter.py) for a model bundle folder; docs/api.md.

    ``backend``: ``auto`` (the bundle's TensorRT engine when tensorrt imports and one
    matches, else ONNX Runtime), ``tensorrt``, ``onnxruntime`` or ``keras`` (desktop).
    """
    # The one import from the core up into the runtime, declared in pyproject.toml: users
    # write `nanoseg.load(...)`, and `import nanoseg` stays as light as the core until then.
    try:
        from edge.segmenter import load as load_segmenter
    except ImportError as exc:
        if getattr(exc, "name", None) not in ("edge", "edge.segmenter"):
            raise
        raise NanosegError("nanoseg.load needs the runtime package edge/ beside nanoseg/ "
                           "(install the whole project: pip install .)")
    return load_segmenter(bundle, backend, device, engine, alpha)
