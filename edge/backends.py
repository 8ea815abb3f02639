"""Inference backends behind one interface: TensorRT, ONNX Runtime, Keras.

Every backend loads from a bundle folder, checks that the artifact's contract matches the
bundle's (an engine or ONNX made from another model is refused in one line), and offers
``infer(x)``: ``x`` is the contract-preprocessed float32 HxWx3 (or 1xHxWx3, NHWC) and the
result is float32 probabilities HxWxC (NHWC), whatever layout the model itself uses.

Heavy libraries are imported inside the backend that needs them: tensorrt/pycuda (through
helper modules edge.tensorrt.runner / edge.tensorrt.engines), onnxruntime. The Keras backend
(TensorFlow, desktop only) lives in train/keras_backend.py and is imported by name.
"""
import importlib
import logging
import os

import numpy as np

from nanoseg.bundle import ONNX, Bundle
from nanoseg.preprocess import to_layout
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)

BACKENDS = ("auto", "tensorrt", "onnxruntime", "keras")
DEVICES = ("cpu", "cuda")
KERAS_BACKEND_MODULE = "train.keras_backend"


def as_batch(x, contract):
    """HxWx3 or 1xHxWx3 float32 -> contiguous 1xHxWx3, checked against the contract size."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    expected = contract.input_shape(1) if contract.layout == "NHWC" else \
        (1, contract.height, contract.width, 3)
    if x.shape != tuple(expected):
        raise NanosegError("backend input has shape {}, the contract wants {} (preprocess "
                           "frames with nanoseg.preprocess.preprocess_image)".format(
                               x.shape, tuple(expected)))
    return np.ascontiguousarray(x)


def output_to_hwc(output, contract):
    """A model output (NHWC or NCHW, with or without batch) -> float32 HxWxC.

    The layout is recognised from where the contract's channel count sits; an output that
    matches neither is a one-line error naming both shapes.
    """
    out = np.asarray(output, dtype=np.float32)
    channels = contract.output_channels
    if out.ndim == 4 and out.shape[0] == 1:
        out = out[0]
    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim == 3 and out.shape[2] == channels and out.shape[0] != channels:
        return out
    if out.ndim == 3 and out.shape[0] == channels and out.shape[2] != channels:
        return np.ascontiguousarray(out.transpose(1, 2, 0))
    if out.ndim == 3 and out.shape[2] == channels:
        return out
    raise NanosegError("model output has shape {}, expected HxWx{} or {}xHxW for this "
                       "contract: the model and contract.json do not belong together".format(
                           np.asarray(output).shape, channels, channels))


class Backend(object):
    """The interface: ``name``, ``contract`` (the bundle's), ``infer(x)``, ``close()``."""

    name = "backend"

    def __init__(self, contract, model_contract):
        self.contract = contract
        self.model_contract = model_contract
        self._input = None

    def input_buffer(self):
        """HxWx3 float32 array preprocessing may write into (no per-frame allocation).

        ``infer`` of this very array passes it on without a copy. None when the model's
        layout needs a transpose anyway (NCHW): then preprocess into a new array.
        """
        if self.model_contract.layout != "NHWC":
            return None
        if self._input is None:
            self._input = np.zeros(self.contract.input_shape(1), np.float32)
        return self._input[0]

    def infer(self, x):
        """Probabilities HxWxC (float32, NHWC) for one preprocessed image."""
        batch = to_layout(as_batch(x, self.contract), self.model_contract.layout)
        return output_to_hwc(self._run(batch), self.contract)

    def _run(self, batch):
        raise NotImplementedError

    def close(self):
        pass

    def describe(self):
        return self.name


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime on ``model.onnx`` (CPU, or CUDA when onnxruntime-gpu is installed)."""

    name = "onnxruntime"

    def __init__(self, bundle, device="cpu", onnx_name=ONNX):
        bundle = as_bundle(bundle)
        contract = bundle.contract()
        path = bundle.require(onnx_name, "run convert/export_onnx.py --bundle " + bundle.root)
        model_contract = bundle.onnx_contract()
        contract.check_compatible(model_contract, "ONNX model {}".format(path))
        Backend.__init__(self, contract, model_contract)
        self.session = _ort_session(path, device)
        self.device = device
        self.input_name = self._check_input(path)
        self.output_name = self.session.get_outputs()[0].name

    def _check_input(self, path):
        """The input name, after checking the session's input shape against the contract."""
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise NanosegError("{} has {} inputs, a nanoseg model has one image input".format(
                path, len(inputs)))
        want = self.model_contract.input_shape(1)
        got = inputs[0].shape
        for dim, expected in zip(got, want):
            if isinstance(dim, int) and dim != expected:
                raise NanosegError(
                    "{} expects input {} but its contract ({}) says {}: re-export the ONNX "
                    "from this bundle".format(path, got, self.model_contract.layout, want))
        if len(got) != len(want):
            raise NanosegError("{} expects a {}-D input, the contract a 4-D {} batch".format(
                path, len(got), self.model_contract.layout))
        return inputs[0].name

    def _run(self, batch):
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def describe(self):
        return "onnxruntime ({})".format(",".join(self.session.get_providers()))


def _ort_session(path, device):
    """An onnxruntime InferenceSession; one-line errors for a missing package or provider."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise NanosegError("onnxruntime is not installed: pip install onnxruntime (or "
                           "onnxruntime-gpu), or use --backend tensorrt on the Jetson")
    if device not in DEVICES:
        raise NanosegError("--device must be one of {}, got {!r}".format(DEVICES, device))
    providers = ["CPUExecutionProvider"]
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise NanosegError("onnxruntime has no CUDAExecutionProvider here (available: {}): "
                               "install onnxruntime-gpu or use --device cpu".format(
                                   ", ".join(ort.get_available_providers())))
        providers.insert(0, "CUDAExecutionProvider")
    ort.set_default_logger_severity(3)  # no per-node warnings (tf2onnx's Resize attrs)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise NanosegError("onnxruntime cannot load {}: {} (re-export it with "
                           "convert/export_onnx.py)".format(path, str(exc).splitlines()[0]))


class TensorRTBackend(Backend):
    """A TensorRT engine from ``engines/`` through edge.tensorrt.runner.TrtRunner.

    The runner pushes its CUDA context (the GPU's primary context) around every call and
    serialises calls with a lock, so ``infer`` may run on any thread - e.g. an inference
    worker beside the capture thread - one call at a time; ``close`` frees the GPU memory.
    """

    name = "tensorrt"

    def __init__(self, bundle, engine_path=None):
        bundle = as_bundle(bundle)
        contract = bundle.contract()
        engines = _import_engines()
        if engine_path is None:
            engine_path = engines.find_engine(bundle, tensorrt_version=tensorrt_version())
            if engine_path is None:
                raise NanosegError("no TensorRT engine in {} matches this bundle and TensorRT: "
                                   "build one with convert/build_engine.py --bundle {}".format(
                                       bundle.engines_dir, bundle.root))
        model_contract = _engine_contract(engines, engine_path, contract)
        Backend.__init__(self, contract, model_contract)
        try:
            from edge.tensorrt.runner import TrtRunner
        except ImportError as exc:
            raise NanosegError("TensorRT is not usable here ({}): use --backend onnxruntime, "
                               "or run on the Jetson (JetPack provides tensorrt and "
                               "pycuda)".format(exc))
        self.engine_path = engine_path
        self.runner = TrtRunner(engine_path)

    def input_buffer(self):
        """The engine's page-locked host input buffer itself, when it is float32 NHWC."""
        host = self.runner.input_host_buffer()
        if host is None or self.model_contract.layout != "NHWC" or \
                tuple(host.shape) != tuple(self.contract.input_shape(1)):
            return None
        return host[0]

    def _run(self, batch):
        outputs = self.runner.infer(batch)
        if isinstance(outputs, dict):
            outputs = list(outputs.values())
        if isinstance(outputs, (list, tuple)):
            outputs = outputs[0]
        return outputs

    def close(self):
        closer = getattr(self.runner, "close", None)
        if closer is not None:
            closer()

    def describe(self):
        return "tensorrt ({})".format(self.engine_path)


def _import_engines():
    try:
        from edge.tensorrt import engines
    except ImportError as exc:
        raise NanosegError("edge/tensorrt/engines.py is not available ({}): this checkout has no "
                           "TensorRT support".format(exc))
    return engines


def _engine_contract(engines, engine_path, bundle_contract):
    """The contract in the engine's sidecar, checked against the bundle's (one-line error)."""
    if not os.path.isfile(engine_path):
        raise NanosegError("--engine {} does not exist: build one with "
                           "convert/build_engine.py".format(engine_path))
    sidecar = engines.read_sidecar(engine_path)
    engines.check_engine_contract(sidecar, bundle_contract, engine_path)
    return engines.sidecar_contract(sidecar, engine_path)


def _keras_backend(bundle):
    """The Keras backend, registered by the training layer (train/ exists on the desktop only).

    Imported by name so that the runtime never depends on the training code: on the Jetson
    (no train/ deployed) this is a one-line error, not an ImportError at start-up.
    """
    try:
        module = importlib.import_module(KERAS_BACKEND_MODULE)
    except ImportError as exc:
        raise NanosegError("the Keras backend needs the desktop environment (train/ and "
                           "TensorFlow): {}; use --backend onnxruntime".format(exc))
    return module.KerasBackend(bundle)


def tensorrt_version():
    """The importable TensorRT's version with pycuda beside it (a Jetson), else None."""
    from edge.tensorrt import compat as trt_compat
    try:
        trt = trt_compat.import_tensorrt()
        trt_compat.import_pycuda()
    except Exception:  # NanosegError, or a CUDA library that fails to load
        return None
    return getattr(trt, "__version__", "unknown")


def _auto_engine(bundle):
    """The engine ``--backend auto`` should use, or None (then ONNX Runtime)."""
    version = tensorrt_version()
    if version is None:
        LOG.info("auto backend: tensorrt/pycuda not importable, using onnxruntime")
        return None
    # raises if an engine built from this ONNX has another contract
    path = _import_engines().find_engine(bundle, tensorrt_version=version)
    if path is None:
        LOG.info("auto backend: no engine matches %s, using onnxruntime", bundle.engines_dir)
    return path


def load_backend(bundle_dir, backend="auto", device="cpu", engine_path=None):
    """The backend named ``backend`` for the bundle (``auto``: a matching engine, else ORT)."""
    bundle = as_bundle(bundle_dir)
    bundle.contract()  # a missing bundle or contract is the first error the user sees
    if backend not in BACKENDS:
        raise NanosegError("--backend must be one of {}, got {!r}".format(BACKENDS, backend))
    if backend == "auto":
        engine_path = engine_path or _auto_engine(bundle)
        backend = "tensorrt" if engine_path else "onnxruntime"
    if backend == "tensorrt":
        chosen = TensorRTBackend(bundle, engine_path)
    elif backend == "keras":
        chosen = _keras_backend(bundle)
    else:
        chosen = OnnxRuntimeBackend(bundle, device)
    LOG.info("backend: %s", chosen.describe())
    return chosen


def as_bundle(bundle):
    return bundle if isinstance(bundle, Bundle) else Bundle(bundle)
