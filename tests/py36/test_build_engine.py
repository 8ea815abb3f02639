"""convert/build_engine.py without a GPU: the CLI's input checks and its no-TensorRT message
(subprocess), ensure_engine's reuse / --force / sidecar / timing cache on the stand-in
tensorrt module, and the whole CLI on stand-in tensorrt + pycuda modules
(tests/tensorrt_standin.py). numpy + edge only: runs under the Jetson-like Python 3.6 too.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from edge.tensorrt import compat as trt_compat, engines
from nanoseg import golden
from nanoseg.bundle import ENGINES_DIR, GOLDEN_NPZ, ONNX, ONNX_CONTRACT
from nanoseg.contract import save_contract
from nanoseg.errors import NanosegError
from nanoseg.files import sha256_file
from tests import tensorrt_standin as standin

ROOT = standin.ROOT
BUILD_ENGINE = os.path.join(ROOT, "convert", "build_engine.py")


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
    save_contract(bundle.onnx_contract().copy(height=96, width=96), bundle.path(ONNX_CONTRACT))
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


# -- ensure_engine: reuse / --force / sidecar / timing cache, on the stand-in tensorrt -------
def _ensure(bundle, trt, fp32=False, force=False, device="Fake Tegra X1"):
    from convert import build_engine
    return build_engine.ensure_engine(bundle, bundle.path(ONNX), bundle.onnx_contract(), trt,
                                      fp32, 256, force, device=device)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_ensure_engine_builds_reuses_and_forces(bundle, capsys):
    trt = standin.make_tensorrt("8")
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
    _ensure(bundle, standin.make_tensorrt("8"))
    old_cache = engines.timing_cache_path(bundle, "8.2.1.8", "Fake Tegra X1")
    before = _read(old_cache)
    trt10 = standin.make_tensorrt("10")
    _ensure(bundle, trt10)                  # another TensorRT: its own engine and cache
    assert trt10.builds and trt10.loaded_caches == [b""]
    assert _read(old_cache) == before
    assert _read(engines.timing_cache_path(bundle, "10.3.0", "Fake Tegra X1")).startswith(
        b"cache:10.3.0")
    # a cache TensorRT rejects (copied from elsewhere) is replaced, the build goes on
    with open(old_cache, "wb") as handle:
        handle.write(b"cache:7.1.3 from another machine")
    capsys.readouterr()
    _ensure(bundle, standin.make_tensorrt("8"), force=True)
    assert "was rejected (stale" in capsys.readouterr().out
    assert _read(old_cache).startswith(b"cache:8.2.1.8")


def test_bad_or_missing_sidecar_means_rebuild(bundle, capsys):
    trt = standin.make_tensorrt("8")
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
    trt = standin.make_tensorrt("8")
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
    trt = standin.make_tensorrt("8", fast_fp16=False)
    path, sidecar = _ensure(bundle, trt)
    out = capsys.readouterr().out
    assert "Fake Tegra X1 reports no fast FP16: using FP32" in out
    assert sidecar["precision"] == "fp32" and os.path.basename(path).startswith("model-fp32-")
    assert _ensure(bundle, trt)[0] == path and len(trt.builds) == 1
    assert "reusing" in capsys.readouterr().out


def test_tensorrt_11_builds_fp32_from_a_float32_onnx(bundle, capsys):
    """11.x has no FP16 flag: a float32 ONNX makes an FP32 engine, labelled as one."""
    trt = standin.make_tensorrt("11")
    path, sidecar = _ensure(bundle, trt)
    assert "TensorRT 11.0.0 has no FP16 builder flag" in capsys.readouterr().out
    assert sidecar["precision"] == "fp32" and os.path.basename(path).startswith("model-fp32-")
    assert trt.builds == [["no TF32"]]


def test_parse_and_build_failures_name_the_node_and_the_fix(bundle):
    trt = standin.make_tensorrt("10", parse_errors=[standin.ParserError10(
        3, "Assertion failed: scales.is_weights()", "up1", "Resize")])
    with pytest.raises(NanosegError) as info:
        _ensure(bundle, trt)
    message = str(info.value)
    assert message == (
        "TensorRT 10.3.0 cannot parse {}: node 3 'up1' (Resize): Assertion failed: "
        "scales.is_weights(); run convert/check_onnx.py on it on the desktop and re-export "
        "with convert/export_onnx.py (opset 13)".format(bundle.path(ONNX)))
    with pytest.raises(NanosegError, match=r"could not build .*--workspace 256 MiB.*"
                                           r"smaller --workspace 128") as info:
        _ensure(bundle, standin.make_tensorrt("8", build_fails=True))
    with open(os.path.join(ROOT, "docs", "troubleshooting.md")) as handle:
        assert "`--workspace 128`" in handle.read()   # the docs give the same advice
    assert "512" not in str(info.value)
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
def test_cli_builds_reuses_and_verifies_with_stand_in_modules(bundle, tmp_path):
    # TensorRT 8.2's API; the engine is a 1x1 conv + sigmoid whose bias comes from
    # $FAKE_TRT_BIAS, so a test can make it disagree with Keras
    modules = standin.write_modules(tmp_path / "stand-ins", api="8", forward="sigmoid_conv")
    contract = bundle.contract()
    inputs = np.random.RandomState(3).rand(2, 64, 96, 3).astype(np.float32)
    weights = np.asarray([0.5, -0.25, 1.0], np.float32)
    probs = (1.0 / (1.0 + np.exp(-(inputs.dot(weights) - 0.2))))[..., None]
    golden.save_golden(bundle.path(GOLDEN_NPZ), inputs, probs, ["a", "b"], contract)
    env = dict(os.environ, PYTHONPATH=modules)

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


# -- tactic sources, layers kept in FP32, memory figures --------------------------------------
def test_tactic_sources_are_in_the_engine_key_and_sidecar(bundle):
    trt = standin.make_tensorrt("8")
    plain, _ = _ensure(bundle, trt)
    from convert import build_engine
    lean, sidecar = build_engine.ensure_engine(
        bundle, bundle.path(ONNX), bundle.onnx_contract(), trt, False, 256, False,
        device="Fake Tegra X1", options={"tactic_sources": "-cublas,-cublaslt"})
    assert lean != plain and trt.tactic_masks == [0b100]
    assert sidecar["tactic_sources"] == "-cublas,-cublaslt"
    assert sidecar["variant"] == "tactics=-cublas,-cublaslt"
    assert sidecar["key"] == engines.engine_key(sha256_file(bundle.path(ONNX)), "8.2.1.8",
                                                "fp16", "Fake Tegra X1",
                                                "tactics=-cublas,-cublaslt")
    assert sidecar["build_peak_rss_mib"] > 0
    assert _ensure(bundle, trt)[0] == plain and len(trt.builds) == 2   # each is reused


def test_fp32_layers_by_pattern_are_pinned_and_recorded(bundle, capsys):
    from convert import build_engine
    trt = standin.make_tensorrt("8")
    path, sidecar = build_engine.ensure_engine(
        bundle, bundle.path(ONNX), bundle.onnx_contract(), trt, False, 256, False,
        device="Fake Tegra X1", options={"fp32_layers": ["final_*", "sigm?id"]})
    assert "keeping 2 of 7 layers in FP32: final_conv, sigmoid" in capsys.readouterr().out
    assert sidecar["fp32_layers"] == ["final_conv", "sigmoid"]
    assert sidecar["variant"] == "fp32-layers=final_*,sigm?id"
    assert _read(path) == b"plan:8.2.1.8:fp16:1:pinned=2"
    assert "OBEY_PRECISION_CONSTRAINTS" in trt.builds[0]


def _nan_golden(bundle):
    contract = bundle.contract()
    inputs = np.random.RandomState(3).rand(2, 64, 96, 3).astype(np.float32)
    probs = (1.0 / (1.0 + np.exp(-(inputs.dot(np.asarray([0.5, -0.25, 1.0], np.float32))
                                   - 0.2))))[..., None]
    golden.save_golden(bundle.path(GOLDEN_NPZ), inputs, probs, ["a", "b"], contract)


def test_an_fp16_engine_with_nan_is_rebuilt_with_fp32_layers_by_auto(bundle, tmp_path):
    """FP16 that fails the check: the error names the way out; ``auto`` takes it, says
    which layers it kept in FP32 and the new figures, and removes the failed engine."""
    _nan_golden(bundle)
    modules = standin.write_modules(tmp_path / "stand-ins", api="8", forward="sigmoid_conv")
    env = dict(os.environ, PYTHONPATH=modules, FAKE_TRT_FP16_NAN="1",
               FAKE_TRT_BUILD_WARNINGS="Weights [name=concat1] had subnormal FP16 values")

    def cli(*args):
        proc = subprocess.Popen([sys.executable, BUILD_ENGINE, "--bundle", bundle.root,
                                 "--log-level", "WARNING"] + list(args), cwd=ROOT, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, universal_newlines=True)
        out, err = proc.communicate(timeout=120)
        return proc.returncode, out, err

    code, out, err = cli()
    assert code == 2 and "NaN/Inf" in err
    assert _one_error_line(err).endswith("; or keep some layers in FP32: --fp32-layers auto "
                                         "(or name them, or build --fp32)")
    assert "memory before the build: RSS" in out and "memory as the engine loaded:" in out
    code, out, err = cli("--fp32-layers", "auto")
    assert code == 0, out + err
    assert "the FP16 engine failed its check (" in out
    assert "keeping 4 of 7 layers in FP32: concat1, final_conv, sigmoid, to_nhwc" in out
    assert "OK: within max |dp| 0.05 and decisive_agreement" in out
    assert "kept in FP32: concat1, final_conv, sigmoid, to_nhwc" in out
    assert "memory: this process's peak RSS" in out
    remaining = engines.list_engines(bundle)
    assert [side["fp32_layers"] for _, side in remaining] == [
        ["concat1", "final_conv", "sigmoid", "to_nhwc"]]      # the failed one is gone
    code, out, err = cli("--fp32-layers", "auto")               # next time: reused
    assert code == 0 and "building" not in out and "reusing " in out, out + err


def test_a_build_killed_with_memory_to_spare_is_not_called_out_of_memory(bundle, tmp_path):
    modules = standin.write_modules(tmp_path / "stand-ins", api="8")
    proc = subprocess.Popen([sys.executable, BUILD_ENGINE, "--bundle", bundle.root,
                             "--skip-verify"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True,
                            env=dict(os.environ, PYTHONPATH=modules, FAKE_TRT_BUILD_KILL="1"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert _one_error_line(err).startswith("error: the build was killed (SIGKILL) with "
                                           "memory to spare (")
    assert not os.path.exists(bundle.path(ENGINES_DIR)) or not engines.list_engines(bundle)


def test_cli_refuses_an_unknown_tactic_source_before_tensorrt(bundle):
    code, _, err = run_build_engine("--bundle", bundle.root, "--tactic-sources=-cublass")
    assert code == 2 and "--tactic-sources: unknown source 'cublass'" in _one_error_line(err)


def test_a_cached_engine_of_another_model_is_refused_and_force_rebuilds_it(bundle, tmp_path):
    """With the stand-in TensorRT: the sidecar records the model.h5 sha256 the engine came
    from; an engine cached for another model is refused in one line, --force rebuilds it."""
    import json
    from tests.py36.conftest import onnx_standin_bytes
    modules = standin.write_modules(tmp_path / "stand-ins", api="8", forward="sigmoid_conv")
    mine = {"model.h5": {"sha256": "a" * 64}}
    contract = bundle.contract().copy(artifacts=mine)
    save_contract(contract, bundle.contract_path)
    save_contract(contract.copy(layout="NCHW"), bundle.path(ONNX_CONTRACT))
    with open(bundle.path(ONNX), "wb") as handle:
        handle.write(onnx_standin_bytes(contract.copy(layout="NCHW")))
    inputs = np.random.RandomState(3).rand(2, 64, 96, 3).astype(np.float32)
    probs = (1.0 / (1.0 + np.exp(-(inputs.dot([0.5, -0.25, 1.0]) - 0.2))))[..., None]
    golden.save_golden(bundle.path(GOLDEN_NPZ), inputs, probs.astype(np.float32), ["a", "b"],
                       contract)

    def cli(*args):
        return subprocess.run([sys.executable, BUILD_ENGINE, "--bundle", bundle.root] +
                              list(args), cwd=ROOT, env=dict(os.environ, PYTHONPATH=modules),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=120)

    first = cli()
    assert first.returncode == 0, first.stdout + first.stderr
    (path, sidecar), = engines.list_engines(bundle)
    assert sidecar["contract"]["artifacts"] == mine
    sidecar["contract"]["artifacts"] = {"model.h5": {"sha256": "b" * 64}}
    with open(engines.sidecar_path(path), "w") as handle:
        json.dump(sidecar, handle)
    refused = cli()
    assert refused.returncode == 2
    assert _one_error_line(refused.stderr) == (
        "error: engine {} was made from another model than {} (model.h5 sha256 "
        "bbbbbbbbbbbb... vs aaaaaaaaaaaa...): rebuild it with python3 convert/build_engine.py "
        "--bundle {} --force".format(path, bundle.contract_path, bundle.root))
    rebuilt = cli("--force")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert engines.read_sidecar(path)["contract"]["artifacts"] == mine
