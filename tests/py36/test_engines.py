"""edge/tensorrt/engines.py: the engine cache key, the sidecar, the engine lookup, the timing
cache file (no TensorRT, no GPU; runs under the Jetson-like Python 3.6 too)."""
import json
import os

import pytest

from edge.tensorrt import engines
from nanoseg.bundle import ENGINES_DIR, ONNX
from nanoseg.errors import NanosegError
from nanoseg.files import sha256_file


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
    other = bundle.contract().copy(height=96, width=96)
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
    _write_engine(bundle, bundle.onnx_contract().copy(height=32, width=32), sha)
    with pytest.raises(NanosegError, match="contract differs from the bundle's"):
        engines.find_engine(bundle)


def test_timing_cache_file_is_keyed_by_tensorrt_and_device(bundle):
    path = engines.timing_cache_path(bundle, "8.2.1.8", "NVIDIA Tegra X1")
    assert os.path.dirname(path) == bundle.path(ENGINES_DIR)
    assert os.path.basename(path).startswith("timing-") and path.endswith(".cache")
    assert path == engines.timing_cache_path(bundle.root, "8.2.1.8", "NVIDIA Tegra X1")
    others = {engines.timing_cache_path(bundle, "8.0.1.6", "NVIDIA Tegra X1"),
              engines.timing_cache_path(bundle, "8.2.1.8", "NVIDIA GeForce RTX 3060"),
              engines.timing_cache_path(bundle, "10.3.0", "NVIDIA Tegra X1")}
    assert len(others) == 3 and path not in others
