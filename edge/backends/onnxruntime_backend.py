"""ONNX Runtime on the bundle's ``model.onnx`` (or ``model_fp16.onnx``): CPU, or CUDA with
onnxruntime-gpu. onnxruntime is imported when a backend is created."""
from edge.backends.base import Backend, as_bundle
from nanoseg.bundle import ONNX, ONNX_FP16
from nanoseg.errors import NanosegError
from nanoseg.identity import check_onnx_identity

DEVICES = ("cpu", "cuda")


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
        self.session = ort_session(path, device)   # first: a file it cannot load says so
        check_onnx_identity(bundle, contract, path, model_contract)
        self.device = device
        self.precision = "fp16" if onnx_name == ONNX_FP16 else "fp32"
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


def ort_session(path, device):
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
