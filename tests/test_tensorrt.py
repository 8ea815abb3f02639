"""A real TensorRT engine: build with convert/build_engine.py, reuse it, run it, check it.

Skipped with a reason unless tensorrt + pycuda and a CUDA GPU are present (the Jetson).
Uses the bundle in NANOSEG_TEST_BUNDLE when set (a real exported Unet); otherwise a tiny
NCHW 1x1-conv + sigmoid model made with onnx.helper, whose output numpy computes exactly.
"""
import os
import shutil

import numpy as np
import pytest

from tests.conftest import HAS_TRT, requires_trt

pytestmark = requires_trt


def _gpu_count():
    if not HAS_TRT:
        return 0
    try:
        import pycuda.driver as cuda
        cuda.init()
        return cuda.Device.count()
    except Exception:  # no driver / no device
        return 0


requires_gpu = pytest.mark.skipif(HAS_TRT and _gpu_count() == 0, reason="tensorrt is installed "
                                  "but no CUDA GPU is visible")

H, W = 32, 48
WEIGHTS = np.asarray([0.5, -0.25, 1.0], np.float32)
BIAS = np.float32(-0.2)


def _tiny_bundle(root):
    """contract + NCHW ONNX (conv 1x1 -> sigmoid -> NHWC) + golden.npz computed in numpy."""
    onnx = pytest.importorskip("onnx", reason="set NANOSEG_TEST_BUNDLE or install onnx")
    from onnx import TensorProto, helper, numpy_helper
    from edge import golden
    from edge.bundle import GOLDEN_NPZ, ONNX, ONNX_CONTRACT
    from edge.contract import Contract, Normalization, save_contract
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv"),
             helper.make_node("Sigmoid", ["c"], ["s"], name="sigmoid"),
             helper.make_node("Transpose", ["s"], ["probabilities"], perm=[0, 2, 3, 1])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, H, W])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [1, H, W, 1])],
        [numpy_helper.from_array(WEIGHTS.reshape(1, 3, 1, 1), "w"),
         numpy_helper.from_array(np.asarray([BIAS]), "b")])
    os.makedirs(root)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]),
              os.path.join(root, ONNX))
    contract = Contract.create(H, W, ["thing"], "sigmoid", Normalization.named("scale"))
    save_contract(contract, os.path.join(root, "contract.json"))
    save_contract(contract.copy(layout="NCHW"), os.path.join(root, ONNX_CONTRACT))
    inputs = np.random.RandomState(0).rand(3, H, W, 3).astype(np.float32)
    probs = 1.0 / (1.0 + np.exp(-(inputs @ WEIGHTS + BIAS)))[..., None]
    golden.save_golden(os.path.join(root, GOLDEN_NPZ), inputs, probs, ["a", "b", "c"],
                       contract)
    return root


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("trt") / "bundle")
    given = os.environ.get("NANOSEG_TEST_BUNDLE")
    if given:
        shutil.copytree(given, root, ignore=shutil.ignore_patterns("engines"))
        return root
    return _tiny_bundle(root)


@requires_gpu
def test_build_reuse_and_verify(bundle_dir, capsys):
    from convert import build_engine
    from edge import engines
    args = build_engine.parse_args(["--bundle", bundle_dir, "--workspace", "128"])
    assert build_engine.main(args) == 0
    out = capsys.readouterr().out
    assert "building a " in out and "OK: within max |dp|" in out
    path = engines.find_engine(bundle_dir)
    sidecar = engines.read_sidecar(path)
    assert sidecar["precision"] in ("fp16", "fp32") and sidecar["build_seconds"] > 0
    assert os.path.isfile(os.path.join(bundle_dir, "engines", engines.TIMING_CACHE))
    assert build_engine.main(args) == 0                       # cached: not rebuilt
    assert "reusing " in capsys.readouterr().out
    args = build_engine.parse_args(["--bundle", bundle_dir, "--force", "--fp32"])
    assert build_engine.main(args) == 0
    assert "building a fp32 engine" in capsys.readouterr().out


@requires_gpu
def test_runner_matches_golden(bundle_dir):
    from convert import build_engine
    from edge import engines, golden
    from edge.bundle import Bundle
    from edge.contract import to_layout
    from edge.errors import NanosegError
    from edge.trt_runtime import TrtRunner
    build_engine.main(build_engine.parse_args(["--bundle", bundle_dir, "--fp32",
                                               "--skip-verify"]))
    bundle = Bundle(bundle_dir)
    data = golden.load_golden(bundle.path("golden.npz"))
    contract = bundle.onnx_contract()
    with TrtRunner(engines.find_engine(bundle, precision="fp32")) as runner:
        assert runner.input_shape == contract.input_shape()
        probs = np.stack([runner.infer(to_layout(x[None], contract.layout))[0].reshape(
            contract.height, contract.width, -1) for x in data["inputs"]])
        with pytest.raises(NanosegError, match="expects"):
            runner.infer(np.zeros((1, 7, 7, 3), np.float32))
    metrics = golden.compare_probabilities(data["probabilities"], probs, contract)
    golden.check_against_thresholds(metrics, golden.FP32_MAX_DIFF, golden.FP32_MIN_AGREEMENT,
                                    "FP32 engine")
