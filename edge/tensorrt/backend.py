"""The TensorRT backend: an engine from the bundle's ``engines/`` run by TrtRunner.

tensorrt and pycuda are imported when a runner is created (edge.tensorrt.runner), so this
module imports anywhere; :func:`auto_engine` and :func:`locate_engine` say whether (and which)
engine can run here without loading it.
"""
import logging
import os

from edge.backends.base import Backend, as_bundle
from edge.tensorrt import engines
from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)


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
        if engine_path is None:
            version, gpu = tensorrt_platform() or (None, None)
            engine_path = engines.find_engine(bundle, tensorrt_version=version, device=gpu)
            if engine_path is None:
                raise NanosegError("no TensorRT engine in {} matches this bundle{}: build one "
                                   "with convert/build_engine.py --bundle {}".format(
                                       bundle.engines_dir, ", TensorRT {} on {}".format(
                                           version, gpu) if gpu else "", bundle.root))
        model_contract = engine_contract(engine_path, contract, bundle)
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


def engine_contract(engine_path, bundle_contract, bundle=None):
    """The contract in the engine's sidecar, checked against the bundle's (one-line error)."""
    if not os.path.isfile(engine_path):
        raise NanosegError("--engine {} does not exist: build one with "
                           "convert/build_engine.py".format(engine_path))
    sidecar = engines.read_sidecar(engine_path)
    engines.check_engine_contract(sidecar, bundle_contract, engine_path, bundle)
    return engines.sidecar_contract(sidecar, engine_path)


def gpu_name():
    """The CUDA GPU's name as build_engine records it in the sidecar (an engine runs only on
    the GPU it was built on), or None when pycuda or the GPU is not there."""
    from edge.tensorrt import compat as trt_compat
    try:
        return trt_compat.cuda_device(trt_compat.import_pycuda(), 0).name()
    except Exception:  # NanosegError, or a CUDA library that fails to load
        return None


def tensorrt_platform():
    """(TensorRT version, GPU name) where tensorrt, pycuda and a GPU are there, else None."""
    from edge.tensorrt import compat as trt_compat
    try:
        trt = trt_compat.import_tensorrt()
    except Exception:  # NanosegError, or a CUDA library that fails to load
        return None
    gpu = gpu_name()
    return None if gpu is None else (getattr(trt, "__version__", "unknown"), gpu)


def auto_engine(bundle):
    """The engine ``--backend auto`` should use, or None (then the next backend)."""
    found = tensorrt_platform()
    if found is None:
        LOG.info("auto backend: tensorrt/pycuda/GPU not available, using onnxruntime")
        return None
    # raises if an engine built from this ONNX has another contract
    path = engines.find_engine(as_bundle(bundle), tensorrt_version=found[0], device=found[1])
    if path is None:
        LOG.info("auto backend: no engine for TensorRT %s on %s in %s, using onnxruntime",
                 found[0], found[1], as_bundle(bundle).engines_dir)
    return path


def locate_engine(bundle, engine_path=None):
    """(engine path, None) or (None, why not): ``engine_path`` or the newest engine built
    from this model.onnx with the importable TensorRT on this GPU (call after tensorrt
    imports)."""
    if engine_path is not None:
        return engine_path, None
    import tensorrt
    bundle = as_bundle(bundle)
    gpu = gpu_name()
    path = engines.find_engine(bundle, tensorrt_version=tensorrt.__version__, device=gpu)
    if path is None:
        return None, ("no engine in {} was built from this model.onnx with TensorRT {}{}: "
                      "run convert/build_engine.py --bundle {}".format(
                          bundle.engines_dir, tensorrt.__version__,
                          " on " + gpu if gpu else "", bundle.root))
    return path, None
