"""nanoseg/golden.py on given arrays: the comparison the Jetson runs against Keras outputs.

numpy + edge only, so it also runs under the Jetson-like Python 3.6 / numpy 1.19.5.
With an exported bundle (tests/py36/conftest.py) it also checks that golden.npz travels:
loaded here with allow_pickle=False and reproduced by onnxruntime on model.onnx.
"""
import os

import numpy as np
import pytest

from nanoseg import golden
from nanoseg.bundle import GOLDEN_NPZ, ONNX, Bundle
from nanoseg.contract import Contract
from nanoseg.normalization import Normalization
from nanoseg.preprocess import to_layout
from nanoseg.errors import NanosegError


def sigmoid_contract(h=4, w=5):
    return Contract.create(h, w, ["nail"], "sigmoid", Normalization.named("scale"))


def softmax_contract(h=4, w=5):
    return Contract.create(h, w, ["road", "car"], "softmax", Normalization.named("imagenet"))


def random_probs(contract, n=3, seed=0):
    rng = np.random.RandomState(seed)
    shape = (n, contract.height, contract.width, contract.output_channels)
    p = rng.rand(*shape).astype(np.float32)
    if contract.activation == "softmax":
        p /= p.sum(axis=-1, keepdims=True)
    return p


def test_identical_outputs_agree_completely():
    c = softmax_contract()
    p = random_probs(c)
    m = golden.compare_probabilities(p, p.copy(), c)
    assert m["max_abs_diff"] == 0.0 and m["mask_agreement"] == 1.0
    assert m["images"] == 3 and m["pixels"] == 3 * 4 * 5
    assert golden.check_against_thresholds(m, 1e-4, 0.999, "x") is m


def test_sigmoid_flip_counts_exactly():
    c = sigmoid_contract()
    ref = np.full((2, 4, 5, 1), 0.9, np.float32)
    ref[0, 0, 0, 0] = 0.52            # near the 0.5 threshold (within 0.05)
    cand = ref.copy()
    cand[0, 0, 0, 0] = 0.49           # flips a near-threshold pixel: harmless
    m = golden.compare_probabilities(ref, cand, c)
    assert m["mask_agreement"] == pytest.approx(39.0 / 40)
    assert m["decisive_agreement"] == 1.0
    assert m["near_threshold_fraction"] == pytest.approx(1.0 / 40)
    assert m["max_abs_diff"] == pytest.approx(0.03, abs=1e-6)
    assert m["per_image_agreement"] == [pytest.approx(19.0 / 20), 1.0]
    cand[1, 2, 2, 0] = 0.1            # flips a confident pixel: a real disagreement
    m = golden.compare_probabilities(ref, cand, c)
    assert m["decisive_agreement"] == pytest.approx(38.0 / 39)
    with pytest.raises(NanosegError, match="decisive_agreement .* lower --fp16-min"):
        golden.check_against_thresholds(m, 1.0, 0.999, "model_fp16.onnx",
                                        agreement_key="decisive_agreement",
                                        flags=("--fp16-max-diff", "--fp16-min-agreement"))


def test_softmax_argmax_and_margin():
    c = softmax_contract(1, 2)
    ref = np.asarray([[[[0.5, 0.3, 0.2], [0.34, 0.33, 0.33]]]], np.float32)
    cand = np.asarray([[[[0.3, 0.5, 0.2], [0.33, 0.34, 0.33]]]], np.float32)
    m = golden.compare_probabilities(ref, cand, c)
    assert m["mask_agreement"] == 0.0
    assert m["near_threshold_fraction"] == 0.5     # only the 0.34/0.33 pixel is a near-tie
    assert m["decisive_agreement"] == 0.0
    margin = golden.decision_margin(ref, c)
    assert np.allclose(margin, [[[0.1, 0.005]]])


def test_threshold_errors_name_the_flag_and_metric():
    c = sigmoid_contract()
    ref = random_probs(c)
    m = golden.compare_probabilities(ref, ref + 0.01, c)
    with pytest.raises(NanosegError, match=r"max \|dp\| = 0.01 > 0.0001.*raise --max-diff"):
        golden.check_against_thresholds(m, 1e-4, 0.5, "model.onnx (FP32)")
    assert golden.check_against_thresholds(m, 0.02, 0.0, "x") is m
    line = golden.format_metrics("fp16", m)
    assert "\n" not in line and "max |dp| 0.01" in line


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_the_candidate_fails_the_check_whatever_the_bounds(bad):
    c = sigmoid_contract()
    ref = random_probs(c)
    cand = ref.copy()
    cand[1, 2, 3, 0] = bad
    m = golden.compare_probabilities(ref, cand, c)
    assert m["non_finite_values"] == 1 and m["reference_non_finite_values"] == 0
    with pytest.raises(NanosegError, match=r"model_fp16.onnx gives 1 NaN/Inf probabilities"):
        golden.check_against_thresholds(m, 1e9, 0.0, "model_fp16.onnx")
    assert "1 NaN/Inf" in golden.format_metrics("fp16", m)


def test_nan_in_the_reference_fails_the_check_and_names_the_golden_file():
    c = softmax_contract()
    ref = random_probs(c)
    cand = ref.copy()
    ref[0, 0, 0, :] = np.nan
    m = golden.compare_probabilities(ref, cand, c)
    assert m["reference_non_finite_values"] == 3 and m["non_finite_values"] == 0
    with pytest.raises(NanosegError, match=r"the Keras reference holds 3 NaN/Inf .* re-export"):
        golden.check_against_thresholds(m, 1e9, 0.0, "x")


def test_a_nan_max_diff_fails_the_check_without_the_counts():
    c = sigmoid_contract()
    m = golden.compare_probabilities(random_probs(c), random_probs(c), c)
    for key in ("non_finite_values", "reference_non_finite_values"):
        m.pop(key)
    m["max_abs_diff"] = float("nan")  # e.g. metrics read back from an older report
    with pytest.raises(NanosegError, match=r"max \|dp\| = nan"):
        golden.check_against_thresholds(m, 1e9, 0.0, "x")


def test_shape_mismatch_is_one_line():
    c = sigmoid_contract()
    with pytest.raises(NanosegError, match=r"candidate probabilities have shape \(1, 5, 4, 1\)"):
        golden.compare_probabilities(random_probs(c, 1), np.zeros((1, 5, 4, 1)), c)
    with pytest.raises(NanosegError, match="compare the same golden set"):
        golden.compare_probabilities(random_probs(c, 2), random_probs(c, 1), c)


def test_save_load_roundtrip_without_pickle(tmp_path):
    c = softmax_contract(6, 8)
    inputs = np.random.RandomState(1).randn(2, 6, 8, 3).astype(np.float32)
    probs = random_probs(c, 2)
    path = golden.save_golden(str(tmp_path / GOLDEN_NPZ), inputs, probs, ["a.png", "b.png"], c)
    raw = np.load(path, allow_pickle=False)
    assert sorted(raw.files) == sorted(golden.GOLDEN_KEYS)
    data = golden.load_golden(path)
    assert np.array_equal(data["inputs"], inputs) and np.array_equal(data["probabilities"],
                                                                     probs)
    assert data["names"] == ["a.png", "b.png"] and data["contract"] == c
    assert not [f for f in os.listdir(str(tmp_path)) if "tmp" in f]


def test_load_errors(tmp_path):
    with pytest.raises(NanosegError, match="golden outputs not found.*export_onnx"):
        golden.load_golden(str(tmp_path / "nope.npz"))
    partial = str(tmp_path / "partial.npz")
    np.savez(partial, inputs=np.zeros((1, 4, 5, 3), np.float32))
    with pytest.raises(NanosegError, match="lacks probabilities, names, contract"):
        golden.load_golden(partial)
    bad = str(tmp_path / "bad.npz")
    with open(bad, "wb") as handle:
        handle.write(b"not a zip")
    with pytest.raises(NanosegError, match="not a readable golden"):
        golden.load_golden(bad)
    c = sigmoid_contract()
    with pytest.raises(NanosegError, match=r"golden inputs have shape \(1, 4, 5, 1\)"):
        golden.save_golden(str(tmp_path / "g.npz"), np.zeros((1, 4, 5, 1)),
                           random_probs(c, 1), ["x"], c)


def test_exported_golden_travels_to_onnxruntime(exported_bundle):
    """A bundle exported on the desktop: this Python reproduces Keras from golden.npz."""
    root = exported_bundle
    ort = pytest.importorskip("onnxruntime")
    bundle = Bundle(root)
    data = golden.load_golden(bundle.require(GOLDEN_NPZ))
    contract = bundle.onnx_contract()
    session = ort.InferenceSession(bundle.require(ONNX), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    probs = np.concatenate([session.run(None, {name: to_layout(x[None], contract.layout)})[0]
                            for x in data["inputs"]])
    m = golden.compare_probabilities(data["probabilities"], probs, contract)
    golden.check_against_thresholds(m, golden.FP32_MAX_DIFF, golden.FP32_MIN_AGREEMENT,
                                    "model.onnx under this Python")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.999])
def test_a_truncated_golden_npz_is_one_line_naming_it(tmp_path, keep):
    c = sigmoid_contract()
    path = golden.save_golden(str(tmp_path / GOLDEN_NPZ), np.zeros((2, 4, 5, 3), np.float32),
                              random_probs(c, 2), ["a", "b"], c)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:  # an interrupted copy
        handle.write(data[:int(len(data) * keep)])
    with pytest.raises(NanosegError, match=r"golden.npz is not a readable golden .npz .*copy "
                                           r"it again or re-export"):
        golden.load_golden(path)
