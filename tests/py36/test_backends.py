"""edge/backends' table: every row is a choice of the three CLIs, a row that cannot run is
unavailable with its reason, a new row is picked up by load_backend, and the TensorRT row
runs on the stand-in tensorrt + pycuda (tests/tensorrt_standin.py). Python 3.6 too."""
import re
import sys

import numpy as np
import pytest

from edge.backends import Backend, find_row, load_backend, table
from edge.tensorrt import engines
from nanoseg.bundle import MODEL_H5, ONNX
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


def _matching_engine(bundle, version):
    """An engine file the stand-in Runtime loads, with a sidecar that matches the bundle."""
    sha = sha256_file(bundle.path(ONNX))
    path = engines.engine_path(bundle, engines.engine_key(sha, version, "fp16", "x"), "fp16")
    engines.write_bytes_atomic(path, b"plan")
    engines.write_sidecar(path, engines.make_sidecar(bundle.onnx_contract(), sha, version,
                                                     "fp16", "x", 1.0, 256))
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
        "no engine in {} was built from this model.onnx with TensorRT {}: run "
        "convert/build_engine.py --bundle {}".format(bundle.engines_dir, trt.__version__,
                                                     bundle.root))
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
