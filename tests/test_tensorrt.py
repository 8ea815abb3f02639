"""A real TensorRT engine: build with convert/build_engine.py, reuse it, run it, check it.

Skipped with a reason unless tensorrt + pycuda and a CUDA GPU are present (the Jetson).
Uses the bundle in NANOSEG_TEST_BUNDLE when set (a real exported Unet); otherwise a tiny
NCHW 1x1-conv + sigmoid model made with onnx.helper, whose output numpy computes exactly.

tests/conftest.py sets CUDA_VISIBLE_DEVICES=-1 for the suite's process (TensorFlow stays on
the CPU), and CUDA would hide the GPU from TensorRT here too; so everything that touches
the GPU - counting devices, building, running - runs in a subprocess given conftest.GPU_ENV,
the caller's environment without that override.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import GPU_ENV, HAS_TRT, ROOT, requires_trt

pytestmark = requires_trt

BUILD_ENGINE = os.path.join(ROOT, "convert", "build_engine.py")


def _run(args, timeout=1800):
    """(returncode, stdout, stderr) of ``python args...`` with the GPU visible."""
    proc = subprocess.Popen([sys.executable] + list(args), cwd=ROOT, env=GPU_ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _gpu_probe():
    """(number of CUDA devices a GPU_ENV subprocess sees, why not when 0)."""
    if not HAS_TRT:
        return 0, "tensorrt/pycuda not installed"
    code, out, err = _run(["-c", "import pycuda.driver as c; c.init(); print(c.Device.count())"],
                          timeout=120)
    words = out.split()
    if code != 0 or not words or not words[-1].isdigit():
        return 0, (err.strip().splitlines() or ["pycuda printed {!r}".format(out)])[-1]
    return int(words[-1]), "cuda.Device.count() is 0"


GPUS, GPU_DETAIL = _gpu_probe()
requires_gpu = pytest.mark.skipif(
    HAS_TRT and GPUS == 0,
    reason="tensorrt is installed but no CUDA GPU is visible to a subprocess run with the "
           "caller's CUDA_VISIBLE_DEVICES={!r} (conftest's -1 applies to the suite's process "
           "only): {}".format(GPU_ENV.get("CUDA_VISIBLE_DEVICES"), GPU_DETAIL))

H, W = 32, 48
WEIGHTS = np.asarray([0.5, -0.25, 1.0], np.float32)
BIAS = np.float32(-0.2)


def _tiny_bundle(root):
    """contract + NCHW ONNX (conv 1x1 -> sigmoid -> NHWC) + golden.npz computed in numpy."""
    onnx = pytest.importorskip("onnx", reason="set NANOSEG_TEST_BUNDLE or install onnx")
    from onnx import TensorProto, helper, numpy_helper
    from nanoseg import golden
    from nanoseg.bundle import GOLDEN_NPZ, ONNX, ONNX_CONTRACT
    from nanoseg.contract import Contract, save_contract
    from nanoseg.normalization import Normalization
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


def _build(bundle_dir, *flags):
    code, out, err = _run([BUILD_ENGINE, "--bundle", bundle_dir] + list(flags))
    assert code == 0, "build_engine.py failed:\n" + out[-3000:] + err[-3000:]
    return out


@requires_gpu
def test_build_reuse_and_verify(bundle_dir):
    from edge.tensorrt import engines
    out = _build(bundle_dir, "--workspace", "128")
    assert "building a " in out and "OK: within max |dp|" in out, out
    path = engines.find_engine(bundle_dir)
    sidecar = engines.read_sidecar(path)
    assert sidecar["precision"] in ("fp16", "fp32") and sidecar["build_seconds"] > 0
    assert os.path.isfile(engines.timing_cache_path(bundle_dir, sidecar["tensorrt_version"],
                                                    sidecar["device"]))
    out = _build(bundle_dir, "--workspace", "128")          # cached: not rebuilt
    assert "reusing " in out and "building a " not in out, out
    out = _build(bundle_dir, "--force", "--fp32")
    assert "building a fp32 engine" in out and "timing cache: reusing" in out, out


# Runs in a GPU_ENV subprocess: TrtRunner on the golden inputs, from a worker thread as the
# camera runtime may; writes the probabilities and the wrong-shape error to an .npz.
RUNNER_SCRIPT = r"""
import sys, threading
sys.path.insert(0, sys.argv[1])
import numpy as np
from edge.tensorrt import engines
from nanoseg import golden
from nanoseg.bundle import Bundle
from nanoseg.preprocess import to_layout
from nanoseg.errors import NanosegError
from edge.tensorrt.runner import TrtRunner

bundle = Bundle(sys.argv[2])
data = golden.load_golden(bundle.path("golden.npz"))
contract = bundle.onnx_contract()
result = {}
with TrtRunner(engines.find_engine(bundle, precision="fp32")) as runner:
    assert runner.input_shape == contract.input_shape(), runner.input_shape

    def work():
        result["probs"] = np.stack([runner.infer(to_layout(x[None], contract.layout))[0]
                                    .reshape(contract.height, contract.width, -1)
                                    for x in data["inputs"]])
    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    try:
        runner.infer(np.zeros((1, 7, 7, 3), np.float32))
    except NanosegError as exc:
        result["error"] = np.asarray(str(exc))
np.savez(sys.argv[3], **result)
"""


@requires_gpu
def test_runner_matches_golden(bundle_dir, tmp_path):
    from nanoseg import golden
    from nanoseg.bundle import Bundle
    _build(bundle_dir, "--fp32", "--skip-verify")
    out_npz = str(tmp_path / "probs.npz")
    code, out, err = _run(["-c", RUNNER_SCRIPT, ROOT, bundle_dir, out_npz], timeout=600)
    assert code == 0, out[-3000:] + err[-3000:]
    with np.load(out_npz, allow_pickle=False) as result:
        probs, error = result["probs"], str(result["error"])
    assert "expects" in error, error
    bundle = Bundle(bundle_dir)
    data = golden.load_golden(bundle.path("golden.npz"))
    metrics = golden.compare_probabilities(data["probabilities"], probs,
                                           bundle.onnx_contract())
    print(json.dumps({k: v for k, v in metrics.items() if k != "per_image_agreement"}))
    golden.check_against_thresholds(metrics, golden.TRT_FP32_MAX_DIFF,
                                    golden.FP32_MIN_AGREEMENT, "FP32 engine")
