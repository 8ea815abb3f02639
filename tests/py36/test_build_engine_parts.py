"""The GPU-free parts of building a TensorRT engine, for real (no TensorRT, no GPU needed).

edge/tensorrt/engines.py (cache key, sidecar, lookup), edge/tensorrt/compat.py against stand-ins with the
TensorRT 8.x and 10.x method sets, edge/tensorrt/runner.plan_buffers, and
convert/build_engine.py's input checks and no-TensorRT message through a subprocess.
numpy + edge only: also runs under the Jetson-like Python 3.6 / numpy 1.19.5.
"""
import json
import os
import subprocess
import sys
import threading
import types

import numpy as np
import pytest

from edge.tensorrt import engines, compat as trt_compat
from nanoseg import golden
from nanoseg.bundle import ENGINES_DIR, GOLDEN_NPZ, ONNX, ONNX_CONTRACT, Bundle
from nanoseg.contract import Contract, save_contract
from nanoseg.files import sha256_file
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError
from edge.tensorrt.runner import BufferPlan, check_input, plan_buffers

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
        self.calls.append(("v2", list(bindings), stream_handle))
        return True


class Context10(Recorder):
    def set_tensor_address(self, name, address):
        self.calls.append(("address", name, address))
        return True

    def execute_async_v3(self, stream_handle):
        self.calls.append(("v3", stream_handle))
        return True


def test_engine_io_detects_once_and_binds_once():
    io8 = trt_compat.EngineIO(Engine8(), Context8())
    assert not io8.uses_tensor_addresses and io8.tensors == trt_compat.io_tensors(Engine8())
    io8.bind([100, 200])
    for frame in range(3):
        io8.execute(7 + frame)
    assert io8._context.calls == [("v2", [100, 200], 7), ("v2", [100, 200], 8),
                                  ("v2", [100, 200], 9)]
    c10 = Context10()
    io10 = trt_compat.EngineIO(Engine10(), c10)
    assert io10.uses_tensor_addresses
    io10.bind([100, 200])
    for frame in range(3):
        io10.execute(7)
    # the addresses are set once (buffers never move); each frame is one enqueue
    assert c10.calls == [("address", "input", 100), ("address", "probabilities", 200),
                         ("v3", 7), ("v3", 7), ("v3", 7)]
    # 8.5/8.6 engines have the tensor API but a context may lack v3: use the bindings
    assert not trt_compat.EngineIO(Engine10(), Context8()).uses_tensor_addresses


def test_engine_io_errors_are_one_line():
    failing = Context8()
    failing.execute_async_v2 = lambda bindings, stream_handle: False
    io = trt_compat.EngineIO(Engine8(), failing)
    io.bind([1, 2])
    with pytest.raises(NanosegError, match="failed to enqueue.*--force"):
        io.execute(0)
    with pytest.raises(NanosegError, match="1 device buffers for an engine with 2 I/O"):
        trt_compat.EngineIO(Engine8(), Context8()).bind([1])
    refusing = Context10()
    refusing.set_tensor_address = lambda name, address: False
    with pytest.raises(NanosegError, match="refused the buffer for tensor 'input'.*--force"):
        trt_compat.EngineIO(Engine10(), refusing).bind([1, 2])


class FakeTrt(object):
    class MemoryPoolType(object):
        WORKSPACE = "WORKSPACE"

    class NetworkDefinitionCreationFlag(object):
        EXPLICIT_BATCH = 0

    class BuilderFlag(object):
        FP16 = "FP16"
        TF32 = "TF32"


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
    assert trt_compat.platform_has_fast_fp16(Builder10())  # no attribute: assume fast FP16

    class SlowFp16Builder(object):
        platform_has_fast_fp16 = False

    assert not trt_compat.platform_has_fast_fp16(SlowFp16Builder())


class FlagConfig(Recorder):
    def set_flag(self, flag):
        self.calls.append(("set", flag))

    def clear_flag(self, flag):
        self.calls.append(("clear", flag))


def test_precision_flags():
    fp16, fp32 = FlagConfig(), FlagConfig()
    trt_compat.set_precision(fp16, True, FakeTrt)
    trt_compat.set_precision(fp32, False, FakeTrt)
    assert fp16.calls == [("set", "FP16")]
    assert fp32.calls == [("clear", "TF32")]  # FP32 engines do not round to TF32

    class NoTf32Trt(FakeTrt):
        class BuilderFlag(object):
            FP16 = "FP16"

    old = FlagConfig()
    trt_compat.set_precision(old, False, NoTf32Trt)
    assert old.calls == []


class TimingCache(object):
    def __init__(self, data):
        self.data = bytes(data)

    def serialize(self):
        return memoryview(self.data + b"+timings")


class CacheConfig(Recorder):
    """create/set/get_timing_cache; accepts only caches whose header says ``accept``."""

    def __init__(self, accept=b"trt8.2/tegra", create_raises=False):
        Recorder.__init__(self)
        self.accept, self.create_raises, self.attached = accept, create_raises, None

    def create_timing_cache(self, data):
        self.calls.append(("create", bytes(data)))
        if self.create_raises and data:
            raise RuntimeError("Serialization assertion failed: magic tag mismatch")
        return TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        self.calls.append(("set", cache.data, ignore_mismatch))
        ok = cache.data == b"" or cache.data.startswith(self.accept)
        if ok:
            self.attached = cache
        return ok

    def get_timing_cache(self):
        return self.attached


def test_timing_cache_load_and_serialize(caplog):
    assert trt_compat.load_timing_cache(object(), b"x") == trt_compat.CACHE_UNSUPPORTED
    assert trt_compat.serialize_timing_cache(object()) is None
    fresh = CacheConfig()
    assert trt_compat.load_timing_cache(fresh, b"") == trt_compat.CACHE_FRESH
    assert fresh.calls == [("create", b""), ("set", b"", False)]
    good = CacheConfig()
    assert trt_compat.load_timing_cache(good, b"trt8.2/tegra:convs") == trt_compat.CACHE_LOADED
    assert good.calls == [("create", b"trt8.2/tegra:convs"), ("set", b"trt8.2/tegra:convs",
                                                              False)]
    assert trt_compat.serialize_timing_cache(good) == b"trt8.2/tegra:convs+timings"
    assert not caplog.records


def test_stale_timing_cache_falls_back_to_a_fresh_one(caplog):
    stale = CacheConfig()
    assert trt_compat.load_timing_cache(stale, b"trt10/rtx:convs") == trt_compat.CACHE_REJECTED
    # never ignore_mismatch=True: the rejected cache is replaced by an empty one
    assert stale.calls == [("create", b"trt10/rtx:convs"), ("set", b"trt10/rtx:convs", False),
                           ("create", b""), ("set", b"", False)]
    assert stale.attached.data == b""
    assert "was rejected" in caplog.text and "fresh cache" in caplog.text
    broken = CacheConfig(create_raises=True)
    assert trt_compat.load_timing_cache(broken, b"garbage") == trt_compat.CACHE_REJECTED
    assert broken.attached.data == b""
    nothing = CacheConfig(accept=b"never")
    nothing.set_timing_cache = lambda cache, ignore: False
    assert trt_compat.load_timing_cache(nothing, b"") == trt_compat.CACHE_UNSUPPORTED


def test_timing_cache_file_is_keyed_by_tensorrt_and_device(bundle):
    path = engines.timing_cache_path(bundle, "8.2.1.8", "NVIDIA Tegra X1")
    assert os.path.dirname(path) == bundle.path(ENGINES_DIR)
    assert os.path.basename(path).startswith("timing-") and path.endswith(".cache")
    assert path == engines.timing_cache_path(bundle.root, "8.2.1.8", "NVIDIA Tegra X1")
    others = {engines.timing_cache_path(bundle, "8.0.1.6", "NVIDIA Tegra X1"),
              engines.timing_cache_path(bundle, "8.2.1.8", "NVIDIA GeForce RTX 3060"),
              engines.timing_cache_path(bundle, "10.3.0", "NVIDIA Tegra X1")}
    assert len(others) == 3 and path not in others


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


# -- TrtRunner against stand-in tensorrt + pycuda modules -------------------------------------
class FakeCudaError(Exception):
    """What pycuda.driver raises (pycuda.driver.Error)."""


class FakeCudaContext(object):
    def __init__(self, cuda, name):
        self.cuda, self.name = cuda, name

    def push(self):
        self.cuda.stack.append(self)
        self.cuda.log.append(("push", self.name, threading.current_thread().name))

    def pop(self):  # pycuda: a static method popping whatever is current
        if not self.cuda.stack:
            raise FakeCudaError("context::pop: cannot pop non-current context")
        self.cuda.log.append(("pop", self.cuda.stack.pop().name))

    def detach(self):
        self.cuda.log.append(("detach", self.name))
        self.cuda.detached.append(self)


class OldFakeDevice(object):
    """A pycuda without retain_primary_context: make_context() pushes a new context."""

    def __init__(self, cuda, index):
        self.cuda, self.index = cuda, index

    def name(self):
        return "Fake Tegra X1"

    def make_context(self):
        context = FakeCudaContext(self.cuda, "own")
        context.push()
        return context


class FakeDevice(OldFakeDevice):
    def retain_primary_context(self):  # not made current (cuDevicePrimaryCtxRetain)
        self.cuda.log.append(("retain", self.index))
        return FakeCudaContext(self.cuda, "primary")


class FakeAllocation(bytearray):
    """Device memory (or, as a numpy buffer, page-locked host memory) that must be freed."""

    def __init__(self, cuda, nbytes, kind):
        bytearray.__init__(self, nbytes)
        self.cuda, self.kind, self.freed = cuda, kind, False
        self.address = 0x10000 + 0x1000 * len(cuda.allocations)
        cuda.allocations.append(self)

    def __int__(self):
        return self.address

    def free(self):
        assert self.cuda.stack, "{} freed with no current context".format(self.kind)
        self.freed = True
        self.cuda.log.append(("free", self.kind))


class FakeStream(object):
    handle = 42

    def __init__(self, cuda):
        assert cuda.stack, "stream created with no current context"
        self.cuda = cuda

    def synchronize(self):
        pass

    def __del__(self):
        self.cuda.log.append(("stream destroyed", bool(self.cuda.stack)))


class FakeCuda(object):
    """The parts of pycuda.driver TrtRunner uses; 'device memory' lives in bytearrays."""

    def __init__(self, device_class=FakeDevice, init_error=None):
        self.device_class, self.init_error = device_class, init_error
        self.log, self.stack, self.allocations, self.detached = [], [], [], []
        self.Error = FakeCudaError

    def init(self):
        if self.init_error:
            raise FakeCudaError(self.init_error)

    def Device(self, index):
        return self.device_class(self, index)

    def Stream(self):
        return FakeStream(self)

    def pagelocked_empty(self, shape, dtype):
        assert self.stack, "host memory allocated with no current context"
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.ndarray(shape, dtype, buffer=FakeAllocation(self, nbytes, "host"))

    def mem_alloc(self, nbytes):
        assert self.stack, "device memory allocated with no current context"
        return FakeAllocation(self, nbytes, "device")

    def memory(self, address):
        return [a for a in self.allocations if a.kind == "device" and a.address == address][0]

    def memcpy_htod_async(self, device, host, stream):
        device[:] = host.tobytes()

    def memcpy_dtoh_async(self, host, device, stream):
        host[...] = np.frombuffer(bytes(device), host.dtype).reshape(host.shape)


def fake_forward(cuda, infos, addresses):
    """The stand-in engine: output (1,H,W,1) = input (1,3,H,W) summed over channels."""
    x = np.frombuffer(bytes(cuda.memory(addresses[0])), np.float32).reshape(infos[0].shape)
    cuda.memory(addresses[1])[:] = x.sum(axis=1)[..., None].astype(np.float32).tobytes()


class RunContext10(Context10):
    def __init__(self, cuda, engine):
        Context10.__init__(self)
        self.cuda, self.engine, self.addresses = cuda, engine, {}

    def set_tensor_address(self, name, address):
        self.addresses[name] = address
        return Context10.set_tensor_address(self, name, address)

    def execute_async_v3(self, stream_handle):
        assert self.cuda.stack, "enqueued with no current context"
        infos = trt_compat.io_tensors(self.engine)
        fake_forward(self.cuda, infos, [self.addresses[i.name] for i in infos])
        return Context10.execute_async_v3(self, stream_handle)


class RunContext8(Context8):
    def __init__(self, cuda, engine):
        Context8.__init__(self)
        self.cuda, self.engine = cuda, engine

    def execute_async_v2(self, bindings, stream_handle):
        assert self.cuda.stack, "enqueued with no current context"
        fake_forward(self.cuda, trt_compat.io_tensors(self.engine), bindings)
        return Context8.execute_async_v2(self, bindings, stream_handle)


def fake_runtime_trt(cuda, engine_class=Engine10, context_class=RunContext10):
    """A tensorrt module whose Runtime deserializes b'plan' into a stand-in engine."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.3.0"

    class Logger(object):
        WARNING = 2

        def __init__(self, severity):
            self.severity = severity

    class Engine(engine_class):
        def create_execution_context(self):
            self.context = context_class(cuda, self)
            return self.context

    class Runtime(object):
        def __init__(self, logger):
            assert cuda.stack, "engine deserialized with no current context"

        def deserialize_cuda_engine(self, data):
            return Engine() if data == b"plan" else None

    trt.Logger, trt.Runtime = Logger, Runtime
    return trt


@pytest.fixture
def fake_gpu(monkeypatch, tmp_path):
    """Install stand-in tensorrt + pycuda modules; -> (cuda, engine file, install)."""
    def install(cuda, trt):
        pycuda = types.ModuleType("pycuda")
        pycuda.driver = cuda
        monkeypatch.setitem(sys.modules, "pycuda", pycuda)
        monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
        monkeypatch.setitem(sys.modules, "tensorrt", trt)
    engine_file = str(tmp_path / "model.engine")
    with open(engine_file, "wb") as handle:
        handle.write(b"plan")
    cuda = FakeCuda()
    install(cuda, fake_runtime_trt(cuda))
    return cuda, engine_file, install


def _x(seed):
    return np.random.RandomState(seed).rand(1, 3, 64, 96).astype(np.float32)


def test_runner_runs_with_addresses_set_once(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, _ = fake_gpu
    runner = TrtRunner(engine_file)
    assert cuda.log[:2] == [("retain", 0), ("push", "primary", "MainThread")]
    assert cuda.log[-1] == ("pop", "primary") and not cuda.stack
    assert runner.input_shape == (1, 3, 64, 96)
    for seed in range(3):
        (out,) = runner.infer(_x(seed))
        np.testing.assert_allclose(out, _x(seed).sum(axis=1)[..., None], rtol=1e-6)
    calls = runner.engine.context.calls
    assert [c[0] for c in calls] == ["address", "address", "v3", "v3", "v3"]
    assert not cuda.stack          # popped after every call
    with pytest.raises(NanosegError, match=r"shape \(1, 64, 96, 3\).*expects \(1, 3, 64, 96\)"):
        runner.infer(np.zeros((1, 64, 96, 3), np.float32))
    runner.close()


def test_runner_copies_unless_given_its_own_input_buffer(fake_gpu):
    """The buffer itself is used as is; a view that only overlaps it (here reversed) holds
    other values and is copied in, like any other array."""
    from edge.tensorrt.runner import TrtRunner
    _, engine_file, _ = fake_gpu
    with TrtRunner(engine_file) as runner:
        host = runner.input_host_buffer()
        host[...] = _x(2)
        (out,) = runner.infer(host)  # filled in place: no copy needed
        np.testing.assert_allclose(out, _x(2).sum(axis=1)[..., None], rtol=1e-6)
        reversed_view = host[..., ::-1]
        assert np.shares_memory(reversed_view, host)
        (out,) = runner.infer(reversed_view)
        np.testing.assert_allclose(out, _x(2)[..., ::-1].sum(axis=1)[..., None], rtol=1e-6)
        (out,) = runner.infer(_x(3))
        np.testing.assert_allclose(out, _x(3).sum(axis=1)[..., None], rtol=1e-6)


def test_runner_with_the_binding_api(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    install(cuda, fake_runtime_trt(cuda, Engine8, RunContext8))
    with TrtRunner(engine_file) as runner:
        (out,) = runner.infer(_x(1))
        np.testing.assert_allclose(out, _x(1).sum(axis=1)[..., None], rtol=1e-6)
        devices = [a.address for a in cuda.allocations if a.kind == "device"]
        assert runner.engine.context.calls == [("v2", devices, 42)]


def test_runner_infers_from_a_worker_thread(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, _ = fake_gpu
    results = []
    with TrtRunner(engine_file) as runner:
        workers = [threading.Thread(target=lambda s=s: results.append((s, runner.infer(_x(s)))),
                                    name="infer-{}".format(s)) for s in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert sorted(s for s, _ in results) == [0, 1, 2, 3]
    for seed, (out,) in results:
        np.testing.assert_allclose(out, _x(seed).sum(axis=1)[..., None], rtol=1e-6)
    pushes = [entry for entry in cuda.log if entry[0] == "push"]
    assert {p[2] for p in pushes} >= {"infer-0", "infer-1", "infer-2", "infer-3"}
    # the lock serialises calls: every push is followed by its pop before the next push
    order = [entry[0] for entry in cuda.log if entry[0] in ("push", "pop")]
    assert order == ["push", "pop"] * (len(order) // 2)


def test_close_frees_everything_inside_the_context_then_releases_it(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, _ = fake_gpu
    runner = TrtRunner(engine_file)
    runner.infer(_x(0))
    mark = len(cuda.log)
    runner.close()
    tail = cuda.log[mark:]
    assert tail[0] == ("push", "primary", "MainThread")
    assert tail[-2:] == [("pop", "primary"), ("detach", "primary")]
    middle = tail[1:-2]
    assert sorted(middle, key=str) == sorted([("free", "device")] * 2 + [("free", "host")] * 2
                                             + [("stream destroyed", True)], key=str)
    assert all(a.freed for a in cuda.allocations) and len(cuda.allocations) == 4
    assert runner.engine is None and runner.context is None and not cuda.stack
    runner.close()                                           # idempotent
    assert cuda.log[mark:] == tail
    with pytest.raises(NanosegError, match="runner was closed"):
        runner.infer(_x(0))


def test_failed_load_releases_before_detaching(fake_gpu, tmp_path):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    bad = str(tmp_path / "other.engine")
    with open(bad, "wb") as handle:
        handle.write(b"built by TensorRT 7")
    with pytest.raises(NanosegError, match="could not load .*other.engine.*--force"):
        TrtRunner(bad)
    assert cuda.log[-2:] == [("pop", "primary"), ("detach", "primary")] and not cuda.stack

    class Refusing(RunContext10):
        def set_tensor_address(self, name, address):
            return False

    cuda = FakeCuda()
    install(cuda, fake_runtime_trt(cuda, Engine10, Refusing))
    with pytest.raises(NanosegError, match="refused the buffer for tensor 'input'"):
        TrtRunner(engine_file)
    # buffers were allocated before bind() failed: all freed, inside the context
    assert len(cuda.allocations) == 4 and all(a.freed for a in cuda.allocations)
    assert ("stream destroyed", True) in cuda.log
    assert cuda.log[-2:] == [("pop", "primary"), ("detach", "primary")] and not cuda.stack


def test_no_gpu_is_one_line(fake_gpu):
    from convert import build_engine
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    cuda = FakeCuda(init_error="cuInit failed: no CUDA-capable device is detected")
    install(cuda, fake_runtime_trt(cuda))
    for call in (lambda: TrtRunner(engine_file), build_engine.device_name):
        with pytest.raises(NanosegError) as info:
            call()
        message = str(info.value)
        assert message.startswith("no CUDA GPU visible: cuInit failed: no CUDA-capable device "
                                  "is detected") and "CUDA_VISIBLE_DEVICES" in message
        assert "\n" not in message
    assert cuda.log == []            # nothing retained, nothing to release


def test_old_pycuda_gets_a_context_of_its_own(fake_gpu):
    from edge.tensorrt.runner import TrtRunner
    cuda, engine_file, install = fake_gpu
    cuda = FakeCuda(device_class=OldFakeDevice)
    install(cuda, fake_runtime_trt(cuda))
    with TrtRunner(engine_file) as runner:
        runner.infer(_x(0))
    names = [entry[1] for entry in cuda.log if entry[0] in ("push", "pop", "detach")]
    assert set(names) == {"own"} and cuda.log[-1] == ("detach", "own") and not cuda.stack


# -- build_engine.ensure_engine: reuse / --force / sidecar / timing cache, with a fake trt ----
class FakeBuildTrt(object):
    """A tensorrt module stand-in for building: counts Builders and builds, fakes the cache.

    A timing cache is accepted only if it was made by this version (its header), like
    TensorRT's; the plan is b"plan:<version>:<fp16|fp32>:<build number>".
    """

    class Logger(object):
        WARNING = 2

        def __init__(self, severity):
            pass

    MemoryPoolType = FakeTrt.MemoryPoolType
    NetworkDefinitionCreationFlag = FakeTrt.NetworkDefinitionCreationFlag
    BuilderFlag = FakeTrt.BuilderFlag

    def __init__(self, version="8.2.1.8", fast_fp16=True, parse_errors=(), build_fails=False):
        self.__version__ = version
        self.fast_fp16, self.parse_errors, self.build_fails = fast_fp16, parse_errors, build_fails
        self.builders, self.builds, self.loaded_caches = 0, [], []

    def Builder(self, logger):
        self.builders += 1
        return FakeBuilder(self)

    def OnnxParser(self, network, logger):
        return FakeParser(self.parse_errors)


class FakeBuilder(object):
    def __init__(self, trt):
        self.trt = trt
        self.platform_has_fast_fp16 = trt.fast_fp16

    def create_network(self, flags):
        return ("network", flags)

    def create_builder_config(self):
        return FakeBuildConfig(self.trt)

    def build_serialized_network(self, network, config):
        if self.trt.build_fails:
            return None
        self.trt.builds.append(sorted(config.flags))
        return "plan:{}:{}:{}".format(self.trt.__version__, "fp16" if "FP16" in config.flags
                                      else "fp32", len(self.trt.builds)).encode()


class FakeBuildConfig(object):
    def __init__(self, trt):
        self.trt, self.flags, self.cache = trt, set(), None

    def set_memory_pool_limit(self, pool, size):
        self.workspace = size

    def set_flag(self, flag):
        self.flags.add(flag)

    def clear_flag(self, flag):
        self.flags.discard(flag)
        self.flags.add("no " + flag)

    def create_timing_cache(self, data):
        return TimingCache(data)

    def set_timing_cache(self, cache, ignore_mismatch):
        header = "cache:{}".format(self.trt.__version__).encode()
        if cache.data and not cache.data.startswith(header):
            return False
        self.trt.loaded_caches.append(cache.data)
        self.cache = TimingCache(header)
        return True

    def get_timing_cache(self):
        return self.cache


class FakeParser(object):
    def __init__(self, errors):
        self.errors = list(errors)
        self.num_errors = len(self.errors)

    def parse(self, data):
        return not self.errors

    def get_error(self, i):
        return self.errors[i]


def _ensure(bundle, trt, fp32=False, force=False, device="Fake Tegra X1"):
    from convert import build_engine
    return build_engine.ensure_engine(bundle, bundle.path(ONNX), bundle.onnx_contract(), trt,
                                      fp32, 256, force, device=device)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_ensure_engine_builds_reuses_and_forces(bundle, capsys):
    trt = FakeBuildTrt()
    path, sidecar = _ensure(bundle, trt)
    out = capsys.readouterr().out
    assert "building a fp16 engine with TensorRT 8.2.1.8 on Fake Tegra X1" in out
    assert "timing cache: none yet" in out and trt.builders == 1
    assert _read(path) == b"plan:8.2.1.8:fp16:1"
    assert sidecar == engines.read_sidecar(path) and sidecar["precision"] == "fp16"
    assert sidecar["key"] == engines.engine_key(sha256_file(bundle.path(ONNX)), "8.2.1.8",
                                                "fp16", "Fake Tegra X1")
    cache = engines.timing_cache_path(bundle, "8.2.1.8", "Fake Tegra X1")
    assert _read(cache).startswith(b"cache:8.2.1.8")

    again = _ensure(bundle, trt)                  # same key: reused, no TensorRT builder
    assert again == (path, sidecar) and trt.builders == 1 and len(trt.builds) == 1
    assert "reusing {}".format(path) in capsys.readouterr().out

    forced, _ = _ensure(bundle, trt, force=True)  # rebuilt, with the timing cache
    out = capsys.readouterr().out
    assert forced == path and _read(path) == b"plan:8.2.1.8:fp16:2" and trt.builders == 2
    assert "timing cache: reusing {}".format(cache) in out
    assert trt.loaded_caches[-1].startswith(b"cache:8.2.1.8")

    fp32, fp32_sidecar = _ensure(bundle, trt, fp32=True)
    assert fp32 != path and os.path.basename(fp32).startswith("model-fp32-")
    assert fp32_sidecar["precision"] == "fp32" and trt.builds[-1] == ["no TF32"]
    assert trt.builds[0] == ["FP16"]


def test_timing_cache_per_tensorrt_version(bundle, capsys):
    _ensure(bundle, FakeBuildTrt("8.2.1.8"))
    old_cache = engines.timing_cache_path(bundle, "8.2.1.8", "Fake Tegra X1")
    before = _read(old_cache)
    trt10 = FakeBuildTrt("10.3.0")
    _ensure(bundle, trt10)                  # another TensorRT: its own engine and cache
    assert trt10.builds and trt10.loaded_caches == [b""]
    assert _read(old_cache) == before
    assert _read(engines.timing_cache_path(bundle, "10.3.0", "Fake Tegra X1")).startswith(
        b"cache:10.3.0")
    # a cache TensorRT rejects (copied from elsewhere) is replaced, the build goes on
    with open(old_cache, "wb") as handle:
        handle.write(b"cache:7.1.3 from another machine")
    capsys.readouterr()
    _ensure(bundle, FakeBuildTrt("8.2.1.8"), force=True)
    assert "was rejected (stale" in capsys.readouterr().out
    assert _read(old_cache).startswith(b"cache:8.2.1.8")


def test_bad_or_missing_sidecar_means_rebuild(bundle, capsys):
    trt = FakeBuildTrt()
    path, _ = _ensure(bundle, trt)
    side = engines.sidecar_path(path)
    with open(side, "w") as handle:
        handle.write("{half a sidecar")
    _ensure(bundle, trt)
    out = capsys.readouterr().out
    assert "not reusing {}: ".format(path) in out and "not valid JSON" in out
    assert "rebuilding" in out and len(trt.builds) == 2 and engines.read_sidecar(path)
    os.remove(side)
    _ensure(bundle, trt)
    assert "has no sidecar" in capsys.readouterr().out and len(trt.builds) == 3
    data = engines.read_sidecar(path)
    data["key"] = "0123456789abcdef"
    engines.write_sidecar(path, data)
    _ensure(bundle, trt)
    assert "describes another build" in capsys.readouterr().out and len(trt.builds) == 4
    _ensure(bundle, trt)
    assert "reusing" in capsys.readouterr().out and len(trt.builds) == 4


def test_a_crash_after_the_sidecar_leaves_no_engine_to_reuse(bundle, monkeypatch):
    from convert import build_engine
    trt = FakeBuildTrt()
    real = engines.write_bytes_atomic

    def crash_on_engine(path, data):
        if path.endswith(engines.ENGINE_SUFFIX):
            raise KeyboardInterrupt("power cut")
        return real(path, data)

    monkeypatch.setattr(build_engine.engines, "write_bytes_atomic", crash_on_engine)
    with pytest.raises(KeyboardInterrupt):
        _ensure(bundle, trt)
    monkeypatch.setattr(build_engine.engines, "write_bytes_atomic", real)
    sidecars = [f for f in os.listdir(bundle.path(ENGINES_DIR))
                if f.endswith(engines.SIDECAR_SUFFIX)]
    assert len(sidecars) == 1                           # the sidecar was written first
    assert engines.find_engine(bundle) is None          # a sidecar alone is no engine
    path, _ = _ensure(bundle, trt)
    assert len(trt.builds) == 2 and _read(path) == b"plan:8.2.1.8:fp16:2"

    def crash_on_sidecar(path, sidecar):
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(build_engine.engines, "write_sidecar", crash_on_sidecar)
    with pytest.raises(KeyboardInterrupt):
        _ensure(bundle, trt, force=True)
    monkeypatch.undo()
    assert _read(path) == b"plan:8.2.1.8:fp16:2"        # the old engine was not replaced
    assert _ensure(bundle, trt)[0] == path and len(trt.builds) == 3


def test_gpu_without_fast_fp16_builds_and_then_reuses_fp32(bundle, capsys):
    trt = FakeBuildTrt(fast_fp16=False)
    path, sidecar = _ensure(bundle, trt)
    out = capsys.readouterr().out
    assert "Fake Tegra X1 reports no fast FP16: using FP32" in out
    assert sidecar["precision"] == "fp32" and os.path.basename(path).startswith("model-fp32-")
    assert _ensure(bundle, trt)[0] == path and len(trt.builds) == 1
    assert "reusing" in capsys.readouterr().out


def test_parse_and_build_failures_name_the_node_and_the_fix(bundle):
    class Error(object):
        def node(self):
            return 3

        def desc(self):
            return "Assertion failed: scales.is_weights()"

        def node_name(self):
            return "up1"

        def node_operator(self):
            return "Resize"

    trt = FakeBuildTrt(parse_errors=[Error()])
    with pytest.raises(NanosegError) as info:
        _ensure(bundle, trt)
    message = str(info.value)
    assert message == (
        "TensorRT 8.2.1.8 cannot parse {}: node 3 'up1' (Resize): Assertion failed: "
        "scales.is_weights(); run convert/check_onnx.py on it on the desktop and re-export "
        "with convert/export_onnx.py (opset 13)".format(bundle.path(ONNX)))
    with pytest.raises(NanosegError, match=r"could not build .*--workspace 256 MiB.*"
                                           r"--workspace 512"):
        _ensure(bundle, FakeBuildTrt(build_fails=True))
    written = os.listdir(bundle.path(ENGINES_DIR)) if os.path.isdir(bundle.path(ENGINES_DIR)) \
        else []
    assert not [f for f in written if f.endswith((engines.ENGINE_SUFFIX,
                                                  engines.SIDECAR_SUFFIX))], written


def test_thresholds_for_each_precision():
    from convert import build_engine
    assert build_engine.thresholds_for("fp16") == (golden.FP16_MAX_DIFF,
                                                   golden.FP16_MIN_AGREEMENT,
                                                   "decisive_agreement")
    assert build_engine.thresholds_for("fp32") == (golden.TRT_FP32_MAX_DIFF,
                                                   golden.FP32_MIN_AGREEMENT, "mask_agreement")
    assert golden.TRT_FP32_MAX_DIFF == 1e-3 and golden.FP32_MAX_DIFF == 1e-4
    assert build_engine.thresholds_for("fp32", 0.01, 0.99) == (0.01, 0.99, "mask_agreement")
    assert build_engine.thresholds_for("fp16", max_diff=0.1)[0] == 0.1


def test_cli_checks_golden_before_tensorrt(bundle):
    os.remove(bundle.path(GOLDEN_NPZ))
    code, out, err = run_build_engine("--bundle", bundle.root)
    assert code == 2
    line = _one_error_line(err)
    assert "golden.npz is missing" in line and "--skip-verify" in line
    assert "[check bundle] done" not in out
    code, out, err = run_build_engine("--bundle", bundle.root, "--skip-verify")
    assert code == 2 and "golden.npz" not in err and "[check bundle] done in" in out


# -- the whole CLI (build, reuse, verify through TensorRTBackend) on stand-in modules ----------
FAKE_PYCUDA_DRIVER = '''
import numpy as np
_memory, _stack = {}, []
def init(): pass
class _Context(object):
    def push(self): _stack.append(self)
    def pop(self): _stack.pop()
    def detach(self): pass
class Device(object):
    def __init__(self, index): pass
    def name(self): return "Stand-in GPU"
    def retain_primary_context(self): return _Context()
class _Allocation(bytearray):
    def __init__(self, nbytes):
        bytearray.__init__(self, nbytes)
        self.address = 4096 * (len(_memory) + 1)
        _memory[self.address] = self
    def __int__(self): return self.address
    def free(self): assert _stack, "freed outside the context"
class Stream(object):
    handle = 1
    def synchronize(self): pass
def pagelocked_empty(shape, dtype):
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return np.ndarray(shape, dtype, buffer=_Allocation(nbytes))
def mem_alloc(nbytes): return _Allocation(nbytes)
def memcpy_htod_async(device, host, stream): device[:] = host.tobytes()
def memcpy_dtoh_async(host, device, stream):
    host[...] = np.frombuffer(bytes(device), host.dtype).reshape(host.shape)
'''

# TensorRT 8.2's API; the "engine" is a 1x1 conv + sigmoid, NCHW in, NHWC out, and its bias
# comes from $FAKE_TRT_BIAS so a test can make it disagree with Keras.
FAKE_TENSORRT = '''
import os
import numpy as np
import pycuda.driver as cuda
__version__ = "8.2.1.8"
H, W = 64, 96
WEIGHTS = np.asarray([0.5, -0.25, 1.0], np.float32)
class Logger(object):
    WARNING = 2
    def __init__(self, severity): pass
class MemoryPoolType(object): WORKSPACE = 1
class NetworkDefinitionCreationFlag(object): EXPLICIT_BATCH = 0
class BuilderFlag(object): FP16 = 1; TF32 = 2
class _Type(object): name = "FLOAT"
class _Engine(object):
    num_bindings = 2
    def get_binding_name(self, i): return ["x", "probabilities"][i]
    def get_binding_shape(self, i): return [(1, 3, H, W), (1, H, W, 1)][i]
    def get_binding_dtype(self, i): return _Type()
    def binding_is_input(self, i): return i == 0
    def create_execution_context(self): return _Context()
class _Context(object):
    def execute_async_v2(self, bindings, stream_handle):
        x = np.frombuffer(bytes(cuda._memory[bindings[0]]), np.float32).reshape(3, H, W)
        z = np.tensordot(WEIGHTS, x, axes=1) + float(os.environ.get("FAKE_TRT_BIAS", "-0.2"))
        p = (1.0 / (1.0 + np.exp(-z)))[None, :, :, None].astype(np.float32)
        cuda._memory[bindings[1]][:] = p.tobytes()
        return True
class Runtime(object):
    def __init__(self, logger): pass
    def deserialize_cuda_engine(self, data): return _Engine() if data == b"plan" else None
class _Cache(object):
    def __init__(self, data): self.data = bytes(data)
    def serialize(self): return memoryview(b"cache:" + __version__.encode())
class _Config(object):
    def set_memory_pool_limit(self, pool, size): pass
    def set_flag(self, flag): pass
    def clear_flag(self, flag): pass
    def create_timing_cache(self, data): return _Cache(data)
    def set_timing_cache(self, cache, ignore_mismatch):
        self.cache = cache
        return not cache.data or cache.data.startswith(b"cache:" + __version__.encode())
    def get_timing_cache(self): return self.cache
class Builder(object):
    platform_has_fast_fp16 = True
    def __init__(self, logger): pass
    def create_network(self, flags): return object()
    def create_builder_config(self): return _Config()
    def build_serialized_network(self, network, config): return b"plan"
class OnnxParser(object):
    num_errors = 0
    def __init__(self, network, logger): pass
    def parse(self, data): return True
'''


def test_cli_builds_reuses_and_verifies_with_stand_in_modules(bundle, tmp_path):
    modules = tmp_path / "stand-ins"
    (modules / "pycuda").mkdir(parents=True)
    (modules / "pycuda" / "__init__.py").write_text("")
    (modules / "pycuda" / "driver.py").write_text(FAKE_PYCUDA_DRIVER)
    (modules / "tensorrt.py").write_text(FAKE_TENSORRT)
    contract = bundle.contract()
    inputs = np.random.RandomState(3).rand(2, 64, 96, 3).astype(np.float32)
    weights = np.asarray([0.5, -0.25, 1.0], np.float32)
    probs = (1.0 / (1.0 + np.exp(-(inputs.dot(weights) - 0.2))))[..., None]
    golden.save_golden(bundle.path(GOLDEN_NPZ), inputs, probs, ["a", "b"], contract)
    env = dict(os.environ, PYTHONPATH=str(modules))

    def cli(*args, **extra_env):
        proc = subprocess.Popen([sys.executable, BUILD_ENGINE, "--bundle", bundle.root]
                                + list(args), cwd=ROOT, env=dict(env, **extra_env),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out, err

    code, out, err = cli()
    assert code == 0, out + err
    assert "building a fp16 engine with TensorRT 8.2.1.8 on Stand-in GPU" in out
    assert "OK: within max |dp| 0.05 and decisive_agreement" in out
    code, out, err = cli()
    assert code == 0 and "reusing " in out and "building" not in out, out + err
    code, out, err = cli("--force", "--fp32")
    assert code == 0 and "building a fp32 engine" in out, out + err
    assert "timing cache: reusing" in out and "OK: within max |dp| 0.001 and mask_agreement" \
        in out
    code, out, err = cli("--fp32", "--log-level", "WARNING",
                         FAKE_TRT_BIAS="-0.1")  # an engine that is off by ~0.02
    assert code == 2 and "reusing " in out
    line = _one_error_line(err)
    assert line.startswith("error: the fp32 engine disagrees with Keras: max |dp| = 0.02")
    assert "> 0.001" in line and "raise --max-diff" in line
