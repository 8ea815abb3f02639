"""Golden outputs: N preprocessed inputs + the Keras probabilities, checked anywhere.

``golden.npz`` is a plain numpy archive (no pickle: ``allow_pickle=False`` loads it), so the
Jetson (Python 3.6, numpy 1.19, no TensorFlow) can ask "does my engine see what Keras saw?"
with nothing but numpy. Keys: ``inputs`` float32 (N,H,W,3) NHWC exactly as
nanoseg.preprocess.preprocess_image made them, ``probabilities`` float32 (N,H,W,C) from Keras,
``names`` unicode (N,), ``contract`` the bundle's contract JSON (0-d unicode).

Thresholds (defaults below, every CLI can override):
* FP32 ONNX Runtime (model.onnx, any machine): max |dp| <= FP32_MAX_DIFF = 1e-4. Same
  float32 graph, different kernels/summation order: observed 1e-6..1.4e-5; 1e-4 leaves 7x
  headroom and still catches any real mismatch (a wrong layout, resize or normalization
  moves p by >> 1e-2). Label agreement >= 99.9 %: with |dp| <= 1e-4 only pixels within
  1e-4 of the threshold (or of a softmax tie) may flip.
* FP32 TensorRT engine: max |dp| <= TRT_FP32_MAX_DIFF = 1e-3, its own bound. TensorRT
  times candidate kernels per layer and keeps the fastest - Winograd/FFT convolutions,
  split reductions, conv+BN+activation fused into one kernel - over the Unet's ~60 layers,
  on the Nano's Maxwell GPU; each re-associates float32 sums differently from Keras, the
  rounding differences compound layer after layer, and which tactic wins can change from
  one build to the next. ONNX Runtime's 1e-4 has no margin for that; 1e-3 still sits 10x
  below the >> 1e-2 that a layout/resize/normalization bug moves p by. FP32 builds clear
  TensorRT's TF32 flag (on by default; Ampere and newer would round inputs to 10-bit
  mantissas), so this bound is about float32 kernels only. Label agreement >= 99.9 %.
* FP16 (model_fp16.onnx, an FP16 engine): max |dp| <= 0.05, the decisive margin below, so
  no error within the bound can flip a decisive pixel. FP16 has an 11-bit mantissa
  (relative step 9.8e-4); errors accumulate over ~60 convolutions: 2.5e-4..7.2e-3 observed
  on trained sigmoid models, 2.5e-2 on a 4-class softmax (CamVid, 96x128); a layout or
  normalization bug moves p by 0.1..1. Raw label agreement depends on how many pixels sit near the threshold
  (94.8 % on an untrained model whose outputs are all ~0.5), so the gate is the
  *decisive* agreement: labels must agree on >= 99.9 % of the pixels whose reference
  probability is more than DECISIVE_MARGIN (0.05) from the decision boundary.
"""
import json
import os
import zipfile
import zlib

import numpy as np

from nanoseg.contract import Contract
from nanoseg.preprocess import probabilities_to_labels
from nanoseg.errors import NanosegError
from nanoseg.files import atomic_path

GOLDEN_KEYS = ("inputs", "probabilities", "names", "contract")
DECISIVE_MARGIN = 0.05
FP32_MAX_DIFF = 1e-4            # ONNX Runtime vs Keras
TRT_FP32_MAX_DIFF = 1e-3        # an FP32 TensorRT engine vs Keras (see above)
FP32_MIN_AGREEMENT = 0.999
FP16_MAX_DIFF = DECISIVE_MARGIN
FP16_MIN_AGREEMENT = 0.999


def save_golden(path, inputs, probabilities, names, contract):
    """Write golden.npz atomically (temp file + rename) from float32 NHWC arrays."""
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    probabilities = np.ascontiguousarray(probabilities, dtype=np.float32)
    names = np.asarray([str(n) for n in names], dtype=np.str_)
    _check_arrays(inputs, probabilities, names, contract, path)
    with atomic_path(path, ".npz") as tmp:  # np.savez appends .npz to any other name
        np.savez(tmp, inputs=inputs, probabilities=probabilities, names=names,
                 contract=np.asarray(contract.to_json(), dtype=np.str_))
    return path


def load_golden(path):
    """golden.npz -> dict(inputs, probabilities, names (list of str), contract (Contract))."""
    if not os.path.isfile(path):
        raise NanosegError("golden outputs not found: {} (convert/export_onnx.py --bundle "
                           "writes them)".format(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in GOLDEN_KEYS if k not in data.files]
            if missing:
                raise NanosegError("{} lacks {}: re-export the bundle with "
                                   "convert/export_onnx.py".format(path, ", ".join(missing)))
            arrays = {k: data[k] for k in GOLDEN_KEYS}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        # a truncated copy (an interrupted transfer) fails inside the zip reader
        raise NanosegError("{} is not a readable golden .npz ({}): copy it again or re-export "
                           "the bundle with convert/export_onnx.py".format(
                               path, str(exc).strip() or type(exc).__name__))
    try:
        contract = Contract.from_dict(json.loads(str(arrays["contract"])), source=path)
    except ValueError as exc:
        raise NanosegError("{} has a damaged contract entry ({}): re-export it".format(
            path, exc))
    _check_arrays(arrays["inputs"], arrays["probabilities"], arrays["names"], contract, path)
    return {"inputs": arrays["inputs"].astype(np.float32, copy=False),
            "probabilities": arrays["probabilities"].astype(np.float32, copy=False),
            "names": [str(n) for n in arrays["names"]], "contract": contract}


def _check_arrays(inputs, probabilities, names, contract, source):
    """Shapes that match each other and the contract, or a one-line error."""
    expected_in = (contract.height, contract.width, 3)
    expected_out = (contract.height, contract.width, contract.output_channels)
    if inputs.ndim != 4 or tuple(inputs.shape[1:]) != expected_in:
        raise NanosegError("{}: golden inputs have shape {}, the contract needs (N,{},{},3) "
                           "NHWC".format(source, inputs.shape, *contract.size))
    if probabilities.ndim != 4 or tuple(probabilities.shape[1:]) != expected_out:
        raise NanosegError("{}: golden probabilities have shape {}, the contract needs "
                           "(N,{},{},{})".format(source, probabilities.shape, *expected_out))
    if not len(inputs) == len(probabilities) == len(names) or len(inputs) == 0:
        raise NanosegError("{}: golden has {} inputs, {} outputs and {} names; they must be "
                           "equal and non-zero".format(source, len(inputs), len(probabilities),
                                                       len(names)))


def _as_batch(probs, contract, what):
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim == 3:
        probs = probs[None]
    if probs.ndim != 4 or probs.shape[1:] != (contract.height, contract.width,
                                              contract.output_channels):
        raise NanosegError("{} probabilities have shape {}, expected (N,{},{},{}) as the "
                           "contract says".format(what, probs.shape, contract.height,
                                                  contract.width, contract.output_channels))
    return probs


def decision_margin(probs, contract):
    """Per pixel distance from the decision boundary (N,H,W).

    Sigmoid: |p - threshold|; softmax: (top1 - top2) / 2, the change that swaps the argmax.
    """
    if contract.activation == "sigmoid":
        return np.abs(probs[..., 0] - contract.threshold)
    top2 = np.sort(probs, axis=-1)[..., -2:]
    return (top2[..., 1] - top2[..., 0]) / 2.0


def compare_probabilities(reference, candidate, contract, margin=DECISIVE_MARGIN):
    """How far ``candidate`` is from ``reference`` (both (N,)H,W,C): a JSON-able dict.

    max_abs_diff/mean_abs_diff on probabilities; mask_agreement: fraction of pixels whose
    label (contract threshold / argmax) is the same; decisive_agreement: the same over pixels
    whose reference is more than ``margin`` from the boundary; near_threshold_fraction: the
    share of pixels within ``margin`` of it (where disagreement is expected and harmless);
    per_image_agreement: worst images show where to look; non_finite_values /
    reference_non_finite_values: NaN/Inf counts (any fails :func:`check_against_thresholds`:
    a NaN compares False with every bound, so the diff alone would let it through).
    """
    ref = _as_batch(reference, contract, "reference")
    cand = _as_batch(candidate, contract, "candidate")
    if ref.shape != cand.shape:
        raise NanosegError("reference has {} images {}, candidate {} {}: compare the same "
                           "golden set".format(len(ref), ref.shape, len(cand), cand.shape))
    with np.errstate(invalid="ignore"):  # inf - inf: counted below, not warned about
        diff = np.abs(ref.astype(np.float64) - cand.astype(np.float64))
    ref_labels = np.stack([probabilities_to_labels(p, contract) for p in ref])
    cand_labels = np.stack([probabilities_to_labels(p, contract) for p in cand])
    same = ref_labels == cand_labels
    near = decision_margin(ref, contract) <= margin
    decisive = ~near
    return {
        "images": int(len(ref)),
        "pixels": int(same.size),
        "max_abs_diff": float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "mask_agreement": float(same.mean()),
        "decisive_agreement": float(same[decisive].mean()) if decisive.any() else 1.0,
        "near_threshold_fraction": float(near.mean()),
        "decisive_margin": float(margin),
        "per_image_agreement": [float(v) for v in same.reshape(len(ref), -1).mean(axis=1)],
        "non_finite_values": int(cand.size - np.count_nonzero(np.isfinite(cand))),
        "reference_non_finite_values": int(ref.size - np.count_nonzero(np.isfinite(ref))),
    }


def check_against_thresholds(metrics, max_abs_diff, min_agreement, what,
                             agreement_key="mask_agreement", flags=("--max-diff",
                                                                    "--min-agreement")):
    """Raise a NanosegError naming ``what``, the metric and the flag unless within bounds.

    NaN/Inf anywhere fails whatever the bounds (written ``not x <= bound`` so a NaN that
    reaches a comparison fails too).
    """
    if metrics.get("reference_non_finite_values", 0):
        raise NanosegError(
            "the Keras reference holds {} NaN/Inf probabilities: golden.npz is damaged or the "
            "Keras model is broken - re-export the bundle with convert/export_onnx.py".format(
                metrics["reference_non_finite_values"]))
    if metrics.get("non_finite_values", 0):
        raise NanosegError(
            "{} gives {} NaN/Inf probabilities (Keras gives none): a broken conversion or a "
            "numeric overflow (e.g. FP16) - rebuild it, or use the FP32 model".format(
                what, metrics["non_finite_values"]))
    if not metrics["max_abs_diff"] <= max_abs_diff:
        raise NanosegError(
            "{} disagrees with Keras: max |dp| = {:.3g} > {:.3g} (mask agreement {:.4%}); a "
            "layout/normalization/resize mismatch or a broken conversion - if this precision "
            "is expected, raise {}".format(what, metrics["max_abs_diff"], max_abs_diff,
                                           metrics["mask_agreement"], flags[0]))
    if not metrics[agreement_key] >= min_agreement:
        raise NanosegError(
            "{} disagrees with Keras: {} = {:.4%} < {:.4%} (max |dp| {:.3g}, {:.2%} of pixels "
            "near the threshold); if this is expected, lower {}".format(
                what, agreement_key, metrics[agreement_key], min_agreement,
                metrics["max_abs_diff"], metrics["near_threshold_fraction"], flags[1]))
    return metrics


def format_metrics(what, metrics):
    """One line for logs and CLIs."""
    bad = metrics.get("non_finite_values", 0) + metrics.get("reference_non_finite_values", 0)
    return ("{}: max |dp| {:.3g}, mean |dp| {:.3g}, mask agreement {:.4%}, decisive agreement "
            "{:.4%}, {:.2%} of pixels within {} of the boundary, worst image {:.4%} "
            "({} images)").format(
                what, metrics["max_abs_diff"], metrics["mean_abs_diff"],
                metrics["mask_agreement"], metrics["decisive_agreement"],
                metrics["near_threshold_fraction"], metrics["decisive_margin"],
                min(metrics["per_image_agreement"]), metrics["images"]) + (
                    ", {} NaN/Inf probabilities".format(bad) if bad else "")
