"""edge/backends' table: every row is a choice of the three CLIs, a row that cannot run is
unavailable with its reason, a new row is picked up by load_backend, and the TensorRT row
runs on the stand-in tensorrt + pycuda (tests/tensorrt_standin.py). Python 3.6 too."""
import os
import re
import sys

import numpy as np
import pytest

from edge.backends import Backend, find_row, load_backend, table
from edge.tensorrt import engines
from nanoseg.bundle import MODEL_H5, ONNX, ONNX_CONTRACT
from nanoseg.contract import save_contract
from nanoseg.errors import NanosegError
from nanoseg.files import sha256_file
from tests import tensorrt_standin as standin


def help_choices(module, flag, capsys):
    """The choices ``flag`` lists in ``module``'s --help."""
    with pytest.raises(SystemExit):
        module.parse_args(["--help"])
    usage = capsys.readouterr().out
    return re.search(re.escape(flag) + r" \{([^}]*)\}", usage).group(1).split(",")


def test_every_row_is_a_choice_of_run_camera_validate_and_benchmark(capsys):
    from convert import validate
    from edge import benchmark, run_camera
    backends = ["auto"] + [row.backend for row in table.ROWS if row.backend]
    assert help_choices(run_camera, "--backend", capsys) == backends
    assert help_choices(benchmark, "--backend", capsys) == backends
    assert help_choices(validate, "--formats", capsys) == [row.name for row in table.ROWS]
    assert [row.name for row in table.ROWS] == ["keras", "onnx", "onnx-fp16", "tensorrt"]
    assert backends == ["auto", "keras", "onnxruntime", "tensorrt"]


def test_keras_row_without_train_is_unavailable_with_the_reason(bundle, monkeypatch):
    """As on the Jetson, where train/ is not deployed (simulated: a module name that does
    not exist); the artifact itself is there."""
    from convert.validation import measure, reference
    with open(bundle.path(MODEL_H5), "wb") as handle:
        handle.write(b"h5 stand-in")
    row = find_row("keras")
    monkeypatch.setattr(row, "opener", "train_not_deployed.keras_backend:KerasBackend")
    reason = ("train_not_deployed.keras_backend does not import here (No module named "
              "'train_not_deployed'); train/ stays on the desktop, where Keras runs")
    assert table.unavailable_reason(row, bundle) == reason
    assert reference.keras_reason(bundle) == reason
    report_row, labels = measure.run_format(bundle, "keras", None, None, None,
                                            {"device": "cpu", "engine": None})
    assert report_row["status"] == "unavailable" and report_row["reason"] == reason
    assert labels is None
    with pytest.raises(NanosegError) as info:
        load_backend(bundle, "keras")
    assert str(info.value) == "--backend keras cannot run here: " + reason


def test_missing_artifact_is_the_reason_before_any_library(bundle):
    assert table.unavailable_reason(find_row("onnx-fp16"), bundle) == (
        "model_fp16.onnx is not in the bundle: run convert/export_onnx.py --bundle " +
        bundle.root)


class EchoBackend(Backend):
    """A backend added by one row: returns a constant probability map."""

    name = "echo"

    def __init__(self, bundle, level=0.25):
        contract = bundle.contract()
        Backend.__init__(self, contract, contract)
        self.level = level

    def _run(self, batch):
        contract = self.contract
        return np.full((1, contract.height, contract.width, contract.output_channels),
                       self.level, np.float32)


def test_a_new_row_is_picked_up_by_load_backend_and_the_clis(bundle, monkeypatch, capsys):
    from edge import run_camera
    row = table.BackendRow("echo", ONNX, __name__ + ":EchoBackend", backend="echo",
                           fixed={"level": 0.75}, help="a constant map (test)")
    monkeypatch.setattr(table, "ROWS", table.ROWS + [row])
    backend = load_backend(bundle, "echo")
    assert isinstance(backend, EchoBackend) and backend.level == 0.75
    probs = backend.infer(np.zeros((64, 96, 3), np.float32))
    assert probs.shape == (64, 96, 1) and float(probs.max()) == 0.75
    assert table.open_row(row, bundle)[1] == bundle.path(ONNX)
    assert "echo" in help_choices(run_camera, "--backend", capsys)
    args = run_camera.parse_args(["--bundle", "b", "--source", "0", "--backend", "echo"])
    assert args.backend == "echo"


def _matching_engine(bundle, version, device="Fake Tegra X1"):
    """An engine file the stand-in Runtime loads, with a sidecar that matches the bundle
    (built on ``device``: the stand-in pycuda's GPU by default)."""
    sha = sha256_file(bundle.path(ONNX))
    path = engines.engine_path(bundle, engines.engine_key(sha, version, "fp16", device), "fp16")
    engines.write_bytes_atomic(path, b"plan")
    engines.write_sidecar(path, engines.make_sidecar(bundle.onnx_contract(), sha, version,
                                                     "fp16", device, 1.0, 256))
    return path


@pytest.mark.parametrize("api", ["8", "10"])
def test_auto_takes_a_matching_engine_where_tensorrt_imports(bundle, monkeypatch, api):
    cuda = standin.FakeCuda()
    trt = standin.make_tensorrt(api, cuda=cuda)
    standin.install(monkeypatch, cuda, trt)
    with pytest.raises(NanosegError, match="onnxruntime"):   # no engine yet: ONNX Runtime
        load_backend(bundle, "auto")
    row = find_row("tensorrt")
    assert table.unavailable_reason(row, bundle) == (
        "no engine in {} was built from this model.onnx with TensorRT {} on {}: run "
        "convert/build_engine.py --bundle {}".format(bundle.engines_dir, trt.__version__,
                                                     cuda.device_name, bundle.root))
    path = _matching_engine(bundle, trt.__version__)
    backend = load_backend(bundle, "auto")
    try:
        assert backend.describe() == "tensorrt ({})".format(path)
        x = np.random.RandomState(0).rand(64, 96, 3).astype(np.float32)
        np.testing.assert_allclose(backend.infer(x), x.sum(axis=2)[..., None], rtol=1e-6)
    finally:
        backend.close()
    opened, artifact = table.open_row(row, bundle)
    opened.close()
    assert artifact == path and table.unavailable_reason(row, bundle) is None


def test_an_engine_built_on_another_gpu_is_never_picked(bundle, monkeypatch):
    """A TensorRT engine runs only on the GPU it was built on: same TensorRT, other GPU."""
    cuda = standin.FakeCuda()
    trt = standin.make_tensorrt("8", cuda=cuda)
    standin.install(monkeypatch, cuda, trt)
    _matching_engine(bundle, trt.__version__, device="NVIDIA Tegra X2")
    with pytest.raises(NanosegError, match="onnxruntime"):   # auto: not that engine
        load_backend(bundle, "auto")
    with pytest.raises(NanosegError,
                       match="no TensorRT engine in .* TensorRT 8.2.1.8 on Fake Tegra X1"):
        load_backend(bundle, "tensorrt")
    here = _matching_engine(bundle, trt.__version__)
    os.utime(here, (1, 1))   # older than the other GPU's engine: still the one taken
    backend = load_backend(bundle, "auto")
    try:
        assert backend.describe() == "tensorrt ({})".format(here)
    finally:
        backend.close()


def test_tensorrt_backend_infers_its_own_input_buffer_without_a_copy(bundle, monkeypatch):
    """Preprocessing writes into input_buffer() (the runner's page-locked input, HxWx3);
    infer() of it reaches the runner as a 1xHxWx3 view of that same memory: no copy."""
    save_contract(bundle.contract().copy(layout="NHWC"), bundle.path(ONNX_CONTRACT))
    io = (("input", (1, 64, 96, 3), "FLOAT", True),
          ("probabilities", (1, 64, 96, 1), "FLOAT", False))
    cuda = standin.FakeCuda()
    trt = standin.make_tensorrt("10", cuda=cuda, io=io,
                                forward=lambda inputs: [inputs[0].sum(axis=3)[..., None]])
    standin.install(monkeypatch, cuda, trt)
    _matching_engine(bundle, trt.__version__)
    backend = load_backend(bundle, "tensorrt")
    copies = []
    real_copyto = np.copyto
    monkeypatch.setattr(np, "copyto", lambda *a, **k: copies.append(1) or real_copyto(*a, **k))
    try:
        buffer = backend.input_buffer()
        assert buffer is not None and buffer.base is not None
        x = np.random.RandomState(1).rand(*buffer.shape).astype(np.float32)
        buffer[...] = x
        np.testing.assert_allclose(backend.infer(buffer), x.sum(axis=2)[..., None], rtol=1e-6)
        assert copies == []
        np.testing.assert_allclose(backend.infer(x * 2), 2 * x.sum(axis=2)[..., None],
                                   rtol=1e-6)
        assert copies == [1]   # any other array is copied in
    finally:
        backend.close()


def test_tensorrt_row_without_tensorrt_is_unavailable(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails
    reason = table.unavailable_reason(find_row("tensorrt"), bundle)
    assert reason.startswith("tensorrt does not import here (")
    assert reason.endswith("; JetPack provides it on the Jetson")


def test_tensorrt_without_its_libraries_names_them_not_the_engine(bundle, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # import fails, as on a PC
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(NanosegError) as info:
        load_backend(bundle, "tensorrt")
    message = str(info.value)
    assert message.startswith("--backend tensorrt cannot run here: tensorrt does not import "
                              "here (")
    assert "pycuda.driver does not import here (" in message
    assert "engine" not in message.replace("engines", "")


def test_an_engine_with_a_backend_that_ignores_it_is_refused(bundle):
    with pytest.raises(NanosegError) as info:
        load_backend(bundle, "onnxruntime", engine_path="x.engine")
    assert str(info.value) == ("--engine is a TensorRT engine, not used by --backend "
                               "onnxruntime: use --backend tensorrt or auto with it, or drop "
                               "--engine")
