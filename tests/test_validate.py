"""convert/validate.py on real trained + exported bundles.

Two bundles: a tiny one trained here on the project's own synthetic nails (tools/synthetic.py,
so every test runs on a fresh clone), and the session's ``exported_nails_bundle`` trained on
../shared/data/nails (skipped without it). What is proven, on both: Keras and ONNX Runtime
rows of the table agree within the tolerance (and their labels agree pixel for pixel over the
split); JSON and Markdown are written; a model.onnx with damaged Conv weights makes the CLI
exit 2 naming the format. On the synthetic bundle: the golden reference (the Jetson's path,
forced here with --reference golden) uses evaluation.json's mIoU and refuses a split it did
not score; options and unavailable formats fail in one line.
"""
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convert import validate
from nanoseg import cli
from nanoseg.bundle import EVALUATION_JSON, ONNX, Bundle
from nanoseg.errors import NanosegError
from tests.conftest import HAS_TRT, ROOT

FAST = ["--runs", "3", "--warmup", "1"]
# Small on purpose: 24 generated images (about 19 train, 5 val) at 64x96, 4 epochs. BatchNorm
# momentum 0.9 (as the demo uses) so the statistics settle within these few steps.
SYNTHETIC = dict(count=24, size=(64, 96), seed=0)
SYNTHETIC_TRAINING = dict(size=(64, 96), epochs=4, batch=4, extra_args=("--bn-momentum", "0.9"))


@pytest.fixture(scope="module")
def synthetic_bundle(tmp_path_factory):
    """Trained on tools/synthetic.py's nails (no ../shared/data needed) and exported."""
    from convert import export_onnx
    from tests.train_helpers import train_small_bundle
    from tools.synthetic import make_synthetic_dataset
    folder = tmp_path_factory.mktemp("validate-synthetic")
    data = str(folder / "data")
    make_synthetic_dataset(data, **SYNTHETIC)
    root = train_small_bundle(folder / "bundle", data, "flat", **SYNTHETIC_TRAINING)
    status = export_onnx.main(export_onnx.parse_args(["--bundle", root, "--golden", "4"]))
    assert status in (0, None), "export_onnx returned {}".format(status)
    return root


@pytest.fixture(scope="module", params=["synthetic", "nails"])
def any_bundle(request):
    """Each exported bundle: the synthetic one, then the shared nails one (skips without data)."""
    if request.param == "synthetic":
        return request.getfixturevalue("synthetic_bundle")
    return request.getfixturevalue("exported_nails_bundle")


def stored_evaluation(root):
    """evaluation.json, which training wrote after scoring the validation split."""
    with open(os.path.join(root, EVALUATION_JSON)) as handle:
        return json.load(handle)


def run_cli(argv, capsys):
    """(exit status, stdout, stderr) of convert/validate.py's CLI, run in this process."""
    status = cli.run(validate.main, validate.parse_args, argv)
    out, err = capsys.readouterr()
    return status, out, err


def rows_by_format(report):
    return dict((row["format"], row) for row in report["formats"])


def copy_bundle(root, tmp_path):
    target = str(tmp_path / "bundle")
    shutil.copytree(root, target)
    return target


@pytest.fixture(scope="module")
def validated(any_bundle, tmp_path_factory):
    """One default run (every format) with explicit report paths: (report, md, printed)."""
    folder = tmp_path_factory.mktemp("validated")
    json_path, md_path = str(folder / "v.json"), str(folder / "v.md")
    argv = ["--bundle", any_bundle, "--json", json_path, "--markdown", md_path] + FAST
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.run(validate.main, validate.parse_args, argv)
    assert status == 0, err.getvalue()
    with open(json_path) as handle:
        report = json.load(handle)
    with open(md_path) as handle:
        markdown = handle.read()
    return report, markdown, out.getvalue()


def test_keras_and_onnx_rows_agree_within_tolerance(validated, any_bundle):
    report, _, _ = validated
    assert report["reference"]["kind"] == "keras" and report["passed"] is True
    rows = rows_by_format(report)
    assert list(rows) == ["keras", "onnx", "onnx-fp16", "tensorrt"]
    keras, onnx = rows["keras"], rows["onnx"]
    assert keras["status"] == "reference" and onnx["status"] == "ok"
    assert abs(onnx["miou"] - keras["miou"]) * 100 <= report["tolerance_points"]
    assert onnx["delta_points"] == pytest.approx((onnx["miou"] - keras["miou"]) * 100)
    assert onnx["agreement"] >= 0.999          # labels over the whole split, not the golden 4
    assert onnx["golden"]["max_abs_diff"] <= 1e-4
    assert keras["golden"]["max_abs_diff"] <= 1e-5   # golden.npz came from this model.h5
    contract = Bundle(any_bundle).contract()
    images = stored_evaluation(any_bundle)["images"]   # the val split training scored
    assert images >= 4
    for row in (keras, onnx, rows["onnx-fp16"]):
        assert list(row["iou_per_class"]) == contract.class_names
        assert row["images"] == report["images"] == images
        assert 0 < row["latency_ms"]["median"] <= row["latency_ms"]["p90"]
        assert row["size_bytes"] == os.path.getsize(os.path.join(any_bundle, row["file"]))
    assert rows["onnx-fp16"]["size_bytes"] < onnx["size_bytes"] * 0.6


@pytest.mark.skipif(HAS_TRT, reason="TensorRT is installed: the engine row may run")
def test_unavailable_tensorrt_is_listed_with_reason(validated):
    report, markdown, _ = validated
    row = rows_by_format(report)["tensorrt"]
    assert row["status"] == "unavailable" and "tensorrt does not import" in row["reason"]
    assert row["miou"] is None and row["latency_ms"] is None
    assert "| tensorrt | - |" in markdown and "unavailable: tensorrt does not import" in markdown


def test_markdown_table_and_json_written(validated):
    report, markdown, printed = validated
    assert markdown in printed                       # the CLI prints what it writes
    assert "Reference: Keras model.h5 run here on the val split" in markdown
    header = [line for line in markdown.splitlines() if line.startswith("| format |")]
    assert len(header) == 1 and header[0].count("|") == 11
    keras_line = [line for line in markdown.splitlines() if line.startswith("| keras |")][0]
    assert "{:.4f}".format(rows_by_format(report)["keras"]["miou"]) in keras_line
    assert "### IoU per class" in markdown and "| background |" in markdown
    assert report["machine"]["cpu_count"] >= 1 and "onnxruntime" in report["machine"]


def test_damaged_onnx_exits_nonzero_naming_the_format(any_bundle, tmp_path, capsys):
    import onnx
    from onnx import numpy_helper
    root = copy_bundle(any_bundle, tmp_path)
    model = onnx.load(os.path.join(root, ONNX))
    weights = damage_last_conv(model, numpy_helper)
    onnx.save(model, os.path.join(root, ONNX))
    status, _, err = run_cli(["--bundle", root, "--formats", "onnx"] + FAST, capsys)
    assert status == 2
    assert err.startswith("error: validation failed") and err.count("\n") == 1
    assert "onnx (model.onnx): mIoU" in err and "below the reference" in err, err
    assert re.search(r"onnx \(model\.onnx\): max \|dp\| \S+ against golden\.npz is above "
                     r"the FP32 bound 1e-04", err), err
    assert "onnx-fp16" not in err        # the untouched FP16 copy is not blamed
    with open(os.path.join(root, validate.VALIDATION_JSON)) as handle:
        report = json.load(handle)
    row = rows_by_format(report)["onnx"]
    assert report["passed"] is False and row["status"] == "below tolerance", weights
    assert row["delta_points"] < -report["tolerance_points"]
    assert row["agreement"] < 0.99 and row["golden"]["max_abs_diff"] > 0.1


def damage_last_conv(model, numpy_helper):
    """Negate and jitter the weights of the last Conv's initializer (the logits layer)."""
    initializers = dict((init.name, init) for init in model.graph.initializer)
    convs = [node for node in model.graph.node
             if node.op_type == "Conv" and node.input[1] in initializers]
    assert convs, "the exported graph has no Conv with an initializer weight"
    target = initializers[convs[-1].input[1]]
    weights = numpy_helper.to_array(target)
    noise = np.random.RandomState(0).normal(0, np.abs(weights).mean(), weights.shape)
    damaged = (-3.0 * weights + noise).astype(weights.dtype)
    target.CopyFrom(numpy_helper.from_array(damaged, target.name))
    return target.name


def test_golden_reference_path_uses_stored_keras_miou(synthetic_bundle, tmp_path, capsys):
    """The Jetson's path (no TensorFlow there), forced here; reports land in the bundle."""
    root = copy_bundle(synthetic_bundle, tmp_path)
    status, out, err = run_cli(["--bundle", root, "--reference", "golden",
                                "--formats", "onnx"] + FAST, capsys)
    assert status == 0, err
    with open(os.path.join(root, validate.VALIDATION_JSON)) as handle:
        report = json.load(handle)
    with open(os.path.join(root, EVALUATION_JSON)) as handle:
        stored = json.load(handle)
    assert report["reference"]["kind"] == "golden"
    assert "golden outputs: Keras mIoU stored in evaluation.json" in out
    rows = rows_by_format(report)
    assert list(rows) == ["keras (stored)", "onnx"]
    assert rows["keras (stored)"]["miou"] == stored["miou"]
    assert rows["keras (stored)"]["latency_ms"] is None
    onnx = rows["onnx"]
    assert onnx["agreement"] == onnx["golden"]["mask_agreement"] >= 0.999
    assert abs(onnx["delta_points"]) <= report["tolerance_points"]
    assert os.path.isfile(os.path.join(root, validate.VALIDATION_MD))


def test_golden_reference_refuses_a_split_evaluation_did_not_score(synthetic_bundle):
    images = stored_evaluation(synthetic_bundle)["images"]
    with pytest.raises(NanosegError, match=r"scored the 'val' split \({} images\), this run "
                                           r"the 'train' split \((\d+) images\).*--split "
                                           r"val".format(images)) as raised:
        validate.validate_bundle(synthetic_bundle, split="train", reference="golden",
                                 formats=["onnx"])
    train_images = int(re.search(r"'train' split \((\d+) images", str(raised.value)).group(1))
    assert train_images + images == SYNTHETIC["count"]


def test_explicitly_requested_unavailable_format_fails(synthetic_bundle, tmp_path, capsys):
    root = copy_bundle(synthetic_bundle, tmp_path)
    os.remove(os.path.join(root, "model_fp16.onnx"))
    status, _, err = run_cli(["--bundle", root, "--reference", "golden",
                              "--formats", "onnx-fp16"] + FAST, capsys)
    assert status == 2
    assert "onnx-fp16 was requested with --formats but is unavailable: model_fp16.onnx is " \
           "not in the bundle: run convert/export_onnx.py" in err


@pytest.mark.parametrize("argv, message", [
    (["--tolerance", "-1"], "--tolerance is in mIoU points and must be >= 0"),
    (["--runs", "0"], "--runs must be >= 1"),
])
def test_bad_options_are_one_line_errors(synthetic_bundle, capsys, argv, message):
    status, _, err = run_cli(["--bundle", synthetic_bundle] + argv, capsys)
    assert status == 2 and message in err and err.count("\n") == 1


def test_missing_bundle_is_one_line_error(tmp_path, capsys):
    status, _, err = run_cli(["--bundle", str(tmp_path / "nope")], capsys)
    assert status == 2 and "bundle folder not found" in err and err.count("\n") == 1


def _row(name, miou, status="ok"):
    row = validate.new_row(name)
    row.update(status=status, miou=miou, file=name + ".x")
    return row


def test_gate_counts_points_not_fractions():
    rows = [_row("keras", 0.800, "reference"), _row("onnx", 0.7951), _row("onnx-fp16", 0.7949),
            _row("tensorrt", None, "unavailable")]
    failures = validate.gate(rows, 0.800, 0.5, required=[])
    assert [r["status"] for r in rows] == ["reference", "ok", "below tolerance", "unavailable"]
    assert rows[1]["delta_points"] == pytest.approx(-0.49)
    assert len(failures) == 1 and failures[0].startswith("onnx-fp16 (onnx-fp16.x): mIoU 0.7949 "
                                                         "is 0.51 points below")
    assert validate.gate([_row("tensorrt", None, "unavailable")], 0.8, 0.5,
                         required=["tensorrt"])[0].startswith("tensorrt was requested")


def test_gate_fails_fp32_onnx_beyond_its_golden_bound_whatever_its_miou():
    """The bound passes every real export (1e-6..1.4e-5 measured) and fails another model,
    which can score the same mIoU; formats with their own precision are not held to it."""
    rows = [_row("keras", 0.800, "reference"), _row("onnx", 0.801), _row("onnx", 0.801),
            _row("onnx-fp16", 0.801)]
    rows[1]["golden"] = {"max_abs_diff": 1.4e-5}
    rows[2]["golden"] = {"max_abs_diff": 0.031}
    rows[3]["golden"] = {"max_abs_diff": 0.031}
    failures = validate.gate(rows, 0.800, 0.5, required=[])
    assert [r["status"] for r in rows] == ["reference", "ok", "failed", "ok"]
    assert failures == ["onnx (onnx.x): max |dp| 3.10e-02 against golden.npz is above the "
                        "FP32 bound 1e-04: it does not compute what Keras computed (another "
                        "model, or a broken export); re-export it with convert/export_onnx.py"]


def test_module_imports_no_heavy_library():
    """The script must load on a Jetson: TF / onnxruntime / tensorrt only when used."""
    code = ("import sys; import convert.validate; heavy = [m for m in ('tensorflow', "
            "'onnxruntime', 'tensorrt', 'onnx') if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_read_only_bundle_or_report_folder_is_refused_before_the_work(read_only_folder,
                                                                        tmp_path, capsys):
    status, _, err = run_cli(["--bundle", read_only_folder], capsys)
    assert status == 2 and err.strip() == "error: --bundle {}: cannot write into folder {} " \
        "(Read-only file system): pick a writable one".format(
            os.path.join(read_only_folder, "validation.json"), read_only_folder)
    report = os.path.join(read_only_folder, "v.md")
    status, _, err = run_cli(["--bundle", str(tmp_path), "--markdown", report], capsys)
    assert status == 2 and err.strip().startswith("error: --markdown {}: cannot write".format(
        report))
