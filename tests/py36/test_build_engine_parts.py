"""The GPU-free parts of building a TensorRT engine, for real (no TensorRT, no GPU needed).

edge/engines.py (cache key, sidecar, lookup), edge/trt_compat.py against stand-ins with the
TensorRT 8.x and 10.x method sets, edge/trt_runtime.plan_buffers, and
convert/build_engine.py's input checks and no-TensorRT message through a subprocess.
numpy + edge only: also runs under the Jetson-like Python 3.6 / numpy 1.19.5.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge import engines, golden, trt_compat
from edge.bundle import ENGINES_DIR, GOLDEN_NPZ, ONNX, ONNX_CONTRACT, Bundle
from edge.contract import Contract, Normalization, save_contract, sha256_file
from edge.errors import NanosegError
from edge.trt_runtime import BufferPlan, check_input, plan_buffers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_ENGINE = os.path.join(ROOT, "convert", "build_engine.py")


def make_contract(height=64, width=96):
    return Contract.create(height, width, ["nail"], "sigmoid", Normalization.named("imagenet"))


@pytest.fixture
def bundle(tmp_path):
    """A bundle as export leaves it: contracts, ONNX bytes, golden.npz (made from arrays)."""
    root = str(tmp_path / "bundle")
    os.makedirs(root)
    contract = make_contract()
    save_contract(contract, os.path.join(root, "contract.json"))
    save_contract(contract.copy(layout="NCHW"), os.path.join(root, ONNX_CONTRACT))
    with open(os.path.join(root, ONNX), "wb") as handle:
        handle.write(b"onnx bytes stand-in")
    probs = np.random.RandomState(0).rand(2, 64, 96, 1).astype(np.float32)
    golden.save_golden(os.path.join(root, GOLDEN_NPZ), np.zeros((2, 64, 96, 3), np.float32),
                       probs, ["a", "b"], contract)
    return Bundle(root)


# -- cache key and sidecar -----------------------------------------------------------------
def test_engine_key_depends_on_each_field_only():
    base = ("abc", "8.2.1.8", "fp16", "NVIDIA Tegra X1")
    key = engines.engine_key(*base)
    assert key == engines.engine_key(*base) and len(key) == 16
    int(key, 16)
    for i, other in enumerate(("abd", "8.0.1.6", "fp32", "Xavier")):
        changed = list(base)
        changed[i] = other
        assert engines.engine_key(*changed) != key
    with pytest.raises(NanosegError, match="precision must be one of"):
        engines.engine_key("abc", "8.2", "int8", "x")


def _write_engine(bundle, contract, onnx_sha, version="8.2.1.8", precision="fp16",
                  device="NVIDIA Tegra X1"):
    key = engines.engine_key(onnx_sha, version, precision, device)
    path = engines.engine_path(bundle, key, precision)
    engines.write_bytes_atomic(path, b"\x00plan")
    engines.write_sidecar(path, engines.make_sidecar(contract, onnx_sha, version, precision,
                                                     device, 12.345, 256))
    return path


def test_sidecar_roundtrip_and_contract_check(bundle):
    contract = bundle.onnx_contract()
    path = _write_engine(bundle, contract, "f00d")
    assert os.path.dirname(path) == bundle.path(ENGINES_DIR)
    assert os.path.basename(path).startswith("model-fp16-") and path.endswith(".engine")
    with open(path, "rb") as handle:
        assert handle.read() == b"\x00plan"
    assert not [f for f in os.listdir(bundle.path(ENGINES_DIR)) if ".tmp" in f]
    sidecar = engines.read_sidecar(path)
    assert sidecar["key"] == engines.engine_key("f00d", "8.2.1.8", "fp16", "NVIDIA Tegra X1")
    assert sidecar["build_seconds"] == 12.35 and sidecar["workspace_mib"] == 256
    assert engines.sidecar_contract(sidecar) == contract
    engines.check_engine_contract(sidecar, bundle.contract(), path)  # NCHW vs NHWC is fine
    other = make_contract(96, 96)
    with pytest.raises(NanosegError, match="engine model-fp16-.*differs.*height"):
        engines.check_engine_contract(sidecar, other, path)


def test_sidecar_errors(bundle):
    path = engines.engine_path(bundle, "0" * 16, "fp16")
    with pytest.raises(NanosegError, match="has no sidecar.*--force"):
        engines.read_sidecar(path)
    engines.write_bytes_atomic(path, b"x")
    with open(engines.sidecar_path(path), "w") as handle:
        handle.write("{broken")
    with pytest.raises(NanosegError, match="not valid JSON"):
        engines.read_sidecar(path)
    with open(engines.sidecar_path(path), "w") as handle:
        json.dump({"format": "nanoseg-engine", "precision": "fp16"}, handle)
    with pytest.raises(NanosegError, match="missing onnx_sha256, tensorrt_version, device"):
        engines.read_sidecar(path)


def test_find_engine_matches_the_current_onnx(bundle):
    assert engines.find_engine(bundle) is None
    sha = sha256_file(bundle.path(ONNX))
    stale = _write_engine(bundle, bundle.onnx_contract(), "old-onnx-sha")
    assert engines.find_engine(bundle) is None                    # built from another ONNX
    good = _write_engine(bundle, bundle.onnx_contract(), sha)
    assert good != stale and engines.find_engine(bundle) == good
    assert engines.find_engine(bundle, tensorrt_version="8.2.1.8", precision="fp16") == good
    assert engines.find_engine(bundle, tensorrt_version="10.3.0") is None
    with open(bundle.path(ONNX), "ab") as handle:
        handle.write(b"re-exported")
    assert engines.find_engine(bundle) is None


def test_find_engine_rejects_another_models_engine(bundle):
    sha = sha256_file(bundle.path(ONNX))
    _write_engine(bundle, make_contract(32, 32), sha)
    with pytest.raises(NanosegError, match="contract differs from the bundle's"):
        engines.find_engine(bundle)


# -- TensorRT 8.x / 10.x through trt_compat, with stand-ins ---------------------------------
class DType(object):
    def __init__(self, name):
        self.name = name


class Engine8(object):
    """The binding API of TensorRT 8.0-8.4."""
    num_bindings = 2
    _b = [("input", (1, 3, 64, 96), "FLOAT", True), ("probabilities", (1, 64, 96, 1), "FLOAT",
                                                       False)]

    def get_binding_name(self, i):
        return self._b[i][0]

    def get_binding_shape(self, i):
        return self._b[i][1]

    def get_binding_dtype(self, i):
        return DType(self._b[i][2])

    def binding_is_input(self, i):
        return self._b[i][3]


class Engine10(object):
    """The named-tensor API of TensorRT >= 8.5 / 10.x."""
    num_io_tensors = 2
    _t = {"input": ((1, 3, 64, 96), "FLOAT", "INPUT"),
          "probabilities": ((1, 64, 96, 1), "FLOAT", "OUTPUT")}

    def get_tensor_name(self, i):
        return ["input", "probabilities"][i]

    def get_tensor_shape(self, name):
        return self._t[name][0]

    def get_tensor_dtype(self, name):
        return DType(self._t[name][1])

    def get_tensor_mode(self, name):
        return DType(self._t[name][2])


def test_io_tensors_same_for_both_apis():
    expected = [trt_compat.TensorInfo("input", (1, 3, 64, 96), "float32", True),
                trt_compat.TensorInfo("probabilities", (1, 64, 96, 1), "float32", False)]
    assert trt_compat.io_tensors(Engine8()) == expected
    assert trt_compat.io_tensors(Engine10()) == expected
    assert not trt_compat.has_tensor_api(Engine8()) and trt_compat.has_tensor_api(Engine10())
    with pytest.raises(NanosegError, match="FP8 has no numpy equivalent"):
        trt_compat.numpy_dtype(DType("FP8"))


class Recorder(object):
    def __init__(self):
        self.calls = []


class Context8(Recorder):
    def execute_async_v2(self, bindings, stream_handle):
        self.calls.append(("v2", bindings, stream_handle))
        return True


class Context10(Recorder):
    def set_tensor_address(self, name, address):
        self.calls.append(("address", name, address))

    def execute_async_v3(self, stream_handle):
        self.calls.append(("v3", stream_handle))
        return True


def test_execute_picks_the_api_by_feature():
    c8 = Context8()
    trt_compat.execute(c8, Engine8(), [100, 200], 7)
    assert c8.calls == [("v2", [100, 200], 7)]
    c10 = Context10()
    trt_compat.execute(c10, Engine10(), [100, 200], 7)
    assert c10.calls == [("address", "input", 100), ("address", "probabilities", 200),
                         ("v3", 7)]
    failing = Context8()
    failing.execute_async_v2 = lambda bindings, stream_handle: False
    with pytest.raises(NanosegError, match="failed to enqueue.*--force"):
        trt_compat.execute(failing, Engine8(), [1, 2], 0)


class FakeTrt(object):
    class MemoryPoolType(object):
        WORKSPACE = "WORKSPACE"

    class NetworkDefinitionCreationFlag(object):
        EXPLICIT_BATCH = 0


def test_workspace_build_and_network_by_feature():
    class Config8(object):
        max_workspace_size = 0

    class Config10(Recorder):
        def set_memory_pool_limit(self, pool, size):
            self.calls.append((pool, size))

    c8, c10 = Config8(), Config10()
    trt_compat.set_workspace(c8, 256 << 20, FakeTrt)
    trt_compat.set_workspace(c10, 256 << 20, FakeTrt)
    assert c8.max_workspace_size == 256 << 20 and c10.calls == [("WORKSPACE", 256 << 20)]

    class OldEngine(object):
        def serialize(self):
            return b"plan8"

    class Builder7(object):
        def build_engine(self, network, config):
            return OldEngine()

        def create_network(self, flags):
            return ("network", flags)

    class Builder10(object):
        def build_serialized_network(self, network, config):
            return b"plan10"

    assert trt_compat.build_serialized(Builder7(), None, None) == b"plan8"
    assert trt_compat.build_serialized(Builder10(), None, None) == b"plan10"
    assert trt_compat.create_network(Builder7(), FakeTrt) == ("network", 1)
    assert trt_compat.platform_has_fast_fp16(Builder10())  # 10.x dropped the query


def test_parser_errors_name_the_node():
    class Error(object):
        def node(self):
            return 41

        def desc(self):
            return "Assertion failed: mode"

    class Error10(Error):
        def node_name(self):
            return "up3"

        def node_operator(self):
            return "Resize"

    class Parser(object):
        num_errors = 2

        def get_error(self, i):
            return [Error(), Error10()][i]

    assert trt_compat.parser_errors(Parser()) == [
        "node 41: Assertion failed: mode", "node 41 'up3' (Resize): Assertion failed: mode"]


# -- buffer planning --------------------------------------------------------------------------
def test_plan_buffers_sizes_from_the_engine():
    plans = plan_buffers(trt_compat.io_tensors(Engine8()))
    assert plans == [BufferPlan("input", (1, 3, 64, 96), "float32", 1 * 3 * 64 * 96 * 4, True),
                     BufferPlan("probabilities", (1, 64, 96, 1), "float32", 64 * 96 * 4,
                                False)]
    check_input(np.zeros((1, 3, 64, 96), np.float32), plans[0])
    with pytest.raises(NanosegError, match=r"shape \(1, 64, 96, 3\).*expects \(1, 3, 64, 96\)"):
        check_input(np.zeros((1, 64, 96, 3), np.float32), plans[0])
    half = trt_compat.TensorInfo("out", (1, 8, 8, 2), "float16", False)
    assert plan_buffers([trt_compat.io_tensors(Engine8())[0], half])[1].nbytes == 256


def test_plan_buffers_rejects_dynamic_and_multi_input():
    dyn = trt_compat.TensorInfo("input", (-1, 3, 64, 96), "float32", True)
    out = trt_compat.TensorInfo("out", (1, 4), "float32", False)
    with pytest.raises(NanosegError, match="dynamic shape.*static ONNX"):
        plan_buffers([dyn, out])
    two = trt_compat.TensorInfo("input2", (1, 4), "float32", True)
    with pytest.raises(NanosegError, match="2 input"):
        plan_buffers([trt_compat.io_tensors(Engine8())[0], two, out])


# -- the CLI's input checks (subprocess: exit status and the one-line message) ---------------
def run_build_engine(*args):
    proc = subprocess.Popen([sys.executable, BUILD_ENGINE] + list(args), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def _one_error_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_cli_missing_bundle(tmp_path):
    code, _, err = run_build_engine("--bundle", str(tmp_path / "nope"))
    assert code == 2
    assert "bundle folder not found" in _one_error_line(err)


def test_cli_missing_onnx_and_contracts(bundle):
    os.remove(bundle.path(ONNX_CONTRACT))
    code, _, err = run_build_engine("--bundle", bundle.root)
    assert code == 2 and "model.contract.json is missing" in _one_error_line(err)
    assert "export_onnx.py" in err
    os.remove(bundle.path("contract.json"))
    code, _, err = run_build_engine("--bundle", bundle.root)
    assert code == 2 and "contract.json is missing" in _one_error_line(err)
    os.remove(bundle.path(ONNX))
    code, _, err = run_build_engine("--bundle", bundle.root)
    assert code == 2 and "model.onnx is missing" in _one_error_line(err)


def test_cli_contract_mismatch(bundle):
    save_contract(make_contract(96, 96).copy(layout="NCHW"), bundle.path(ONNX_CONTRACT))
    code, _, err = run_build_engine("--bundle", bundle.root)
    assert code == 2 and "contract differs" in _one_error_line(err)


def test_cli_without_tensorrt_says_so_in_one_line(bundle):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    code, out, err = run_build_engine("--bundle", bundle.root)
    assert code == 2
    line = _one_error_line(err)
    assert line == "error: " + trt_compat.NOT_INSTALLED.format("build_engine.py")
    assert line.startswith("error: TensorRT is not installed: build_engine.py runs on the "
                           "Jetson (JetPack provides tensorrt")
    assert "[check bundle] done in" in out


def test_cli_rejects_bad_workspace(bundle):
    code, _, err = run_build_engine("--bundle", bundle.root, "--workspace", "0")
    assert code == 2 and "--workspace must be a positive" in _one_error_line(err)
