"""convert/validate.py under the Jetson's Python 3.6 (no TensorFlow): the golden reference.

Needs an exported bundle with golden.npz and evaluation.json whose recorded dataset exists
here: under 3.6, the one the desktop suite trained and exported, passed in
NANOSEG_TEST_BUNDLE (tests/py36/conftest.py). Proves that without TensorFlow the
script picks the golden reference by itself, lists Keras as "stored" with the reason, scores
model.onnx and model_fp16.onnx with onnxruntime 1.10 on the split, and that ONNX FP32 agrees
with the Keras probabilities in golden.npz and stays within the mIoU tolerance of the Keras
mIoU in evaluation.json.
"""
import importlib.util
import json
import os
import sys

import pytest

from convert import validate
from nanoseg import cli
from nanoseg.bundle import EVALUATION_JSON, Bundle


pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is not None,
    reason="TensorFlow is installed here: this is the Jetson's no-TensorFlow path, run under "
           "Python 3.6 by tests/test_python36.py")


@pytest.fixture(scope="module")
def bundle_root(exported_bundle):
    root = exported_bundle
    dataset = Bundle(root).contract().extra.get("dataset", {}).get("root")
    if not dataset or not os.path.isdir(dataset):
        pytest.skip("the bundle's dataset {} is not on this machine".format(dataset))
    return root


def test_golden_reference_without_tensorflow(bundle_root, tmp_path, capsys):
    json_path, md_path = str(tmp_path / "v.json"), str(tmp_path / "v.md")
    status = cli.run(validate.main, validate.parse_args,
                     ["--bundle", bundle_root, "--json", json_path, "--markdown", md_path,
                      "--runs", "3", "--warmup", "1"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "tensorflow" not in sys.modules
    with open(json_path) as handle:
        report = json.load(handle)
    with open(os.path.join(bundle_root, EVALUATION_JSON)) as handle:
        stored = json.load(handle)
    assert report["reference"]["kind"] == "golden" and report["passed"] is True
    rows = dict((row["format"], row) for row in report["formats"])
    assert list(rows) == ["keras (stored)", "onnx", "onnx-fp16", "tensorrt"]
    keras = rows["keras (stored)"]
    assert keras["miou"] == stored["miou"] and "tensorflow does not import" in keras["reason"]
    onnx = rows["onnx"]
    assert onnx["status"] == "ok" and onnx["agreement"] >= 0.999
    assert onnx["golden"]["max_abs_diff"] <= 1e-4
    assert abs(onnx["delta_points"]) <= report["tolerance_points"]
    assert rows["onnx-fp16"]["status"] == "ok"
    assert rows["tensorrt"]["status"] == "unavailable"
    assert report["machine"]["python"].startswith("3.6")
    with open(md_path) as handle:
        markdown = handle.read()
    assert "Reference: golden outputs: Keras mIoU stored in evaluation.json" in markdown
    assert markdown in out
