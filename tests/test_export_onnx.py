"""Export small TRAINED bundles to ONNX and prove ONNX Runtime sees what Keras saw.

The bundles are conftest's session fixtures: trained by train/train.py on real nails and
CamVid images, exported by convert/export_onnx.py's main() (nails NHWC, CamVid --nchw).

Bounds checked (reasons in nanoseg/golden.py): FP32 ONNX Runtime vs Keras max |dp| <= 1e-4
(float32 re-ordered sums: ~1e-6 seen) and label agreement >= 99.9 %; the FP16 copy within
0.05 (the decisive margin) and >= 99.9 % agreement on pixels more than 0.05 from the decision boundary.
"""
import json
import os

import numpy as np
import pytest

from convert import check_onnx, export_onnx
from nanoseg import golden
from nanoseg.bundle import GOLDEN_NPZ, ONNX, ONNX_CONTRACT, ONNX_FP16, PARITY_JSON, Bundle
from nanoseg.contract import Contract, load_contract, save_contract
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def nails_bundle(exported_nails_bundle):
    """conftest's trained nails bundle (sigmoid) after export_onnx.main: NHWC input."""
    return Bundle(exported_nails_bundle)


@pytest.fixture(scope="module")
def camvid_bundle(exported_camvid_bundle):
    """conftest's trained CamVid bundle (softmax) after export_onnx.main --nchw."""
    return Bundle(exported_camvid_bundle)


def _check_parity_report(bundle):
    report = json.load(open(bundle.path(PARITY_JSON)))
    fp32, fp16 = report["onnx"], report["onnx_fp16"]
    assert fp32["max_abs_diff"] <= 1e-4 and fp32["mask_agreement"] >= 0.999, fp32
    assert fp16["max_abs_diff"] <= golden.FP16_MAX_DIFF, fp16
    assert fp16["decisive_agreement"] >= golden.FP16_MIN_AGREEMENT, fp16
    print("FP32", golden.format_metrics("onnx", fp32))
    print("FP16", golden.format_metrics("fp16", fp16))
    return report


def _recompute(bundle, name):
    """Independent of parity.json: reload golden.npz, run ORT, compare again."""
    data = golden.load_golden(bundle.path(GOLDEN_NPZ))
    contract = bundle.onnx_contract()
    probs = export_onnx.onnxruntime_probabilities(bundle, name, data["inputs"])
    return golden.compare_probabilities(data["probabilities"], probs, contract)


def test_nails_onnx_matches_keras(nails_bundle):
    _check_parity_report(nails_bundle)
    metrics = _recompute(nails_bundle, ONNX)
    assert metrics["max_abs_diff"] <= 1e-4 and metrics["mask_agreement"] >= 0.999
    data = np.load(nails_bundle.path(GOLDEN_NPZ), allow_pickle=False)
    c = nails_bundle.contract()
    assert data["inputs"].shape == (8, c.height, c.width, 3)  # --golden default: 8 images
    assert data["probabilities"].shape == (8, c.height, c.width, 1)
    # a trained model, not a constant ~0.5: most pixels are decisive, so the FP16 gate
    # (agreement on pixels > 0.05 from the threshold) judged most of the image
    assert metrics["near_threshold_fraction"] < 0.5, metrics


def test_camvid_nchw_onnx_matches_keras(camvid_bundle):
    report = _check_parity_report(camvid_bundle)
    assert report["onnx"]["images"] == 8
    c = camvid_bundle.contract()
    session = ort.InferenceSession(camvid_bundle.path(ONNX), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, c.height, c.width]
    assert session.get_outputs()[0].shape == [1, c.height, c.width, c.num_labels]
    assert camvid_bundle.onnx_contract().layout == "NCHW"
    assert _recompute(camvid_bundle, ONNX_FP16)["max_abs_diff"] <= golden.FP16_MAX_DIFF


def test_contract_embedded_and_beside(nails_bundle):
    model = onnx.load(nails_bundle.path(ONNX))
    props = {p.key: p.value for p in model.metadata_props}
    embedded = Contract.from_dict(json.loads(props[export_onnx.METADATA_KEY]))
    beside = load_contract(nails_bundle.path(ONNX_CONTRACT))
    assert embedded == beside
    nails_bundle.contract().check_compatible(beside)
    assert beside.versions["opset"] == 13 and check_onnx.default_opset(model) == 13


def test_export_passes_check_onnx_and_has_no_half_pixel_resize(nails_bundle):
    model = onnx.load(nails_bundle.path(ONNX))
    assert check_onnx.check_model(model) == []
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 5  # the Unet's five UpSampling2D
    for node in resizes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["coordinate_transformation_mode"] == b"asymmetric"
    args = check_onnx.parse_args([nails_bundle.path(ONNX)])
    assert check_onnx.main(args) == 0


def test_resize_rewrite_is_exact_on_the_exported_model(nails_bundle):
    """Put tf2onnx's original attributes back: ORT gives bit-identical probabilities."""
    model = onnx.load(nails_bundle.path(ONNX))
    for node in model.graph.node:
        if node.op_type == "Resize":
            for attribute in node.attribute:
                if attribute.name == "coordinate_transformation_mode":
                    attribute.s = b"tf_half_pixel_for_nn"
    assert check_onnx.check_model(model)  # the original form is rejected ...
    original = model.SerializeToString()
    data = golden.load_golden(nails_bundle.path(GOLDEN_NPZ))
    x = data["inputs"][:2]
    session = ort.InferenceSession(original, providers=["CPUExecutionProvider"])
    before = np.concatenate([session.run(None, {"input": v[None]})[0] for v in x])
    assert len(export_onnx.rewrite_nearest_resizes(model)) == 5
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    after = np.concatenate([session.run(None, {"input": v[None]})[0] for v in x])
    assert np.array_equal(before, after)  # ... and the accepted form is the same function


def _resize_model(scales, ctm=b"tf_half_pixel_for_nn"):
    from onnx import TensorProto, helper, numpy_helper
    shape_in = [1, 3, 5, 7]
    shape_out = [int(d * s) for d, s in zip(shape_in, scales)]
    node = helper.make_node("Resize", ["x", "roi", "scales"], ["y"], name="up",
                            mode="nearest", nearest_mode="floor",
                            coordinate_transformation_mode=ctm.decode())
    graph = helper.make_graph(
        [node], "resize", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape_in)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape_out)],
        [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
         numpy_helper.from_array(np.asarray(scales, np.float32), "scales")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("scales", [(1, 1, 2, 2), (1, 1, 3, 2), (1, 1, 4, 5)])
def test_resize_rewrite_is_exact_for_integer_scales(scales):
    model = _resize_model(scales)
    x = np.random.RandomState(0).rand(1, 3, 5, 7).astype(np.float32)
    before = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert export_onnx.rewrite_nearest_resizes(model) == ["up"]
    after = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    assert np.array_equal(before, after)
    assert check_onnx.check_model(model) == []


def test_resize_rewrite_leaves_fractional_scales_alone():
    model = _resize_model((1, 1, 1.5, 2))
    assert export_onnx.rewrite_nearest_resizes(model) == []
    problems = check_onnx.check_model(model)
    assert len(problems) == 1 and "tf_half_pixel_for_nn" in problems[0]


def test_export_errors_are_one_line(tmp_path, nails_bundle):
    with pytest.raises(NanosegError, match="bundle folder not found"):
        export_onnx.export_bundle(str(tmp_path / "nope"), [("a", None)])
    with pytest.raises(NanosegError, match="--opset 15 is above 13"):
        export_onnx.export_bundle(nails_bundle.root, [("a", None)], opset=15)
    bare = Contract.create(64, 64, ["x"], "sigmoid", Normalization.named("scale"))
    with pytest.raises(NanosegError, match="does not record its dataset: pass --data"):
        export_onnx.load_golden_images(bare)
    os.makedirs(str(tmp_path / "empty"))
    save_contract(bare, str(tmp_path / "empty" / "contract.json"))
    with pytest.raises(NanosegError, match="model.h5 is missing"):
        export_onnx.export_bundle(str(tmp_path / "empty"), [("a", np.zeros((8, 8, 3),
                                                                             np.uint8))])


def test_parity_failure_names_the_flag(nails_bundle):
    report = json.load(open(nails_bundle.path(PARITY_JSON)))
    with pytest.raises(NanosegError, match="--fp16-max-diff"):
        golden.check_against_thresholds(report["onnx_fp16"], 0.0, 0.5, "model_fp16.onnx",
                                        flags=("--fp16-max-diff", "--fp16-min-agreement"))


def test_a_read_only_bundle_is_refused_before_the_export(read_only_folder, capsys):
    from nanoseg import cli
    assert cli.run(export_onnx.main, export_onnx.parse_args,
                   ["--bundle", read_only_folder]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --bundle {0}: cannot write into folder {0} (Read-only file " \
        "system): pick a writable one".format(read_only_folder)


def test_a_full_disk_while_writing_the_saved_model_is_one_line_and_leaves_nothing(
        nearly_full_folder):
    from train import keras_env
    keras_env.prepare()
    import tensorflow as tf
    inputs = tf.keras.Input((64, 64, 3))
    hidden = tf.keras.layers.Conv2D(64, 3, padding="same")(inputs)
    hidden = tf.keras.layers.Conv2D(64, 3, padding="same")(hidden)
    model = tf.keras.Model(inputs, tf.keras.layers.Conv2D(1, 3, padding="same")(hidden))
    contract = Contract.create(64, 64, ["nail"], "sigmoid", Normalization.named("scale"))
    target = os.path.join(nearly_full_folder, "saved_model")
    with pytest.raises(NanosegError, match="cannot write {}: No space left on device: free "
                                           "space there".format(target)):
        export_onnx.write_saved_model(model, contract, target)
    assert os.listdir(nearly_full_folder) == []
