"""nanoseg/identity.py: every artifact names the model.h5 it was made from, and an artifact
of another model is refused by run_camera, nanoseg.load(), validate and build_engine.

The other model is real: the session's exported nails bundle trained one epoch more with
``--resume`` (same size and classes, a new model.h5), which leaves the artifacts exported
from the old model beside it - and whose fresh export is the source of a model.onnx copied
into another bundle. Without a recorded identity (bundles made before it was recorded),
validate's FP32 golden bound still catches the swap.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from convert import build_engine, validate
from nanoseg import cli
from nanoseg.bundle import CONTRACT_JSON, GOLDEN_NPZ, MODEL_H5, ONNX, ONNX_FP16, Bundle
from nanoseg.errors import NanosegError
from nanoseg.identity import check_same_model, model_sha256, onnx_contract, onnx_metadata
from tests.conftest import NAILS_TRAINING, ROOT
from tests.train_helpers import train_args

FAST = ["--runs", "2", "--warmup", "0"]


def test_metadata_reader_matches_the_onnx_package_on_a_real_graph():
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, producer_name="nanoseg-test")
    helper.set_model_props(model, {"nanoseg_contract": "{\"é\": 1}", "other": ""})
    onnx.checker.check_model(model)
    assert onnx_metadata(model.SerializeToString()) == {"nanoseg_contract": "{\"é\": 1}",
                                                        "other": ""}


def test_artifacts_recording_no_model_are_accepted_and_others_refused():
    from nanoseg.contract import Contract
    from nanoseg.normalization import Normalization
    base = Contract.create(64, 64, ["nail"], "sigmoid", Normalization.named("imagenet"))
    mine = base.copy(artifacts={MODEL_H5: {"sha256": "a" * 64}})
    theirs = base.copy(artifacts={MODEL_H5: {"sha256": "b" * 64}})
    for one, other in ((mine, base), (base, theirs), (mine, mine)):
        check_same_model(one, other, "x.onnx", "contract.json", "fix it")
    with pytest.raises(NanosegError, match=r"^x\.onnx was made from another model than "
                                           r"contract\.json \(model\.h5 sha256 bbbbbbbbbbbb\."
                                           r"\.\. vs aaaaaaaaaaaa\.\.\.\): fix it$"):
        check_same_model(mine, theirs, "x.onnx", "contract.json", "fix it")


@pytest.fixture(scope="module")
def retrained(exported_nails_bundle, nails_dir, tmp_path_factory):
    """The exported nails bundle after one more epoch with --resume: its model.h5 is new,
    its model.onnx, model_fp16.onnx and golden.npz are the old model's."""
    from train import train as train_cli
    out = str(tmp_path_factory.mktemp("retrained") / "bundle")
    shutil.copytree(exported_nails_bundle, out)
    argv = train_args(out, nails_dir, "flat", NAILS_TRAINING["classes"],
                      size=NAILS_TRAINING["size"], epochs=NAILS_TRAINING["epochs"] + 1,
                      batch=NAILS_TRAINING["batch"],
                      extra_args=list(NAILS_TRAINING["extra_args"]) + ["--resume"])
    assert train_cli.main(train_cli.parse_args(argv)) == 0
    assert model_sha256(Bundle(out).contract()) != \
        model_sha256(Bundle(exported_nails_bundle).contract())
    return out


@pytest.fixture(scope="module")
def reexported(retrained, tmp_path_factory):
    """The retrained bundle exported again: every artifact of the new model."""
    from convert import export_onnx
    out = str(tmp_path_factory.mktemp("reexported") / "bundle")
    shutil.copytree(retrained, out)
    assert export_onnx.main(export_onnx.parse_args(["--bundle", out])) in (0, None)
    return out


def _copy(root, tmp_path, name):
    target = str(tmp_path / name)
    shutil.copytree(root, target)
    return target


def _run_camera(bundle, nails_dir):
    source = os.path.join(nails_dir, "images")
    return subprocess.run([sys.executable, os.path.join(ROOT, "edge", "run_camera.py"),
                           "--bundle", bundle, "--source", source, "--headless",
                           "--backend", "onnxruntime", "--max-frames", "3"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300, cwd=ROOT)


def _error_line(result):
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def _refusal(artifact, bundle, fix):
    return r"{} was made from another model than {} \(model\.h5 sha256 [0-9a-f]{{12}}\.\.\. " \
           r"vs [0-9a-f]{{12}}\.\.\.\): {}".format(re.escape(artifact),
                                                 re.escape(os.path.join(bundle, CONTRACT_JSON)),
                                                 fix)


def test_every_artifact_records_the_model_it_came_from(reexported):
    bundle = Bundle(reexported)
    sha = model_sha256(bundle.contract())
    from nanoseg.files import sha256_file
    assert sha == sha256_file(bundle.path(MODEL_H5))
    assert model_sha256(onnx_contract(bundle.path(ONNX))) == sha
    assert model_sha256(onnx_contract(bundle.path(ONNX_FP16))) == sha
    assert model_sha256(bundle.onnx_contract()) == sha
    from nanoseg.golden import load_golden
    assert model_sha256(load_golden(bundle.path(GOLDEN_NPZ))["contract"]) == sha


def test_artifacts_left_from_before_a_retraining_are_refused_everywhere(retrained, nails_dir,
                                                                        capsys):
    reexport = r"re-export it with python3 convert/export_onnx\.py --bundle " + \
        re.escape(retrained)
    onnx_refusal = _refusal(os.path.join(retrained, ONNX), retrained, reexport)
    assert re.match("error: " + onnx_refusal + "$", _error_line(_run_camera(retrained,
                                                                            nails_dir)))
    import nanoseg
    with pytest.raises(NanosegError, match=onnx_refusal):
        nanoseg.load(retrained, backend="onnxruntime")
    with pytest.raises(NanosegError, match="^" + onnx_refusal):
        build_engine.resolve_inputs(retrained)
    status = cli.run(validate.main, validate.parse_args, ["--bundle", retrained] + FAST)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert re.match("error: " + _refusal(os.path.join(retrained, GOLDEN_NPZ), retrained,
                                         reexport) + "$", err.strip()), err


def test_a_model_onnx_copied_from_another_bundle_is_refused(reexported,
                                                            exported_nails_bundle, nails_dir,
                                                            tmp_path, capsys):
    assert _run_camera(reexported, nails_dir).returncode == 0
    root = _copy(reexported, tmp_path, "swapped")
    shutil.copy(os.path.join(exported_nails_bundle, ONNX), os.path.join(root, ONNX))
    onnx_refusal = _refusal(os.path.join(root, ONNX), root,
                            r"re-export it with python3 convert/export_onnx\.py --bundle " +
                            re.escape(root))
    assert re.match("error: " + onnx_refusal + "$", _error_line(_run_camera(root, nails_dir)))
    status = cli.run(validate.main, validate.parse_args,
                     ["--bundle", root, "--formats", "onnx"] + FAST)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    assert err.startswith("error: validation failed") and re.search(onnx_refusal, err), err


def test_without_a_recorded_model_a_swapped_onnx_fails_the_fp32_golden_bound(
        reexported, exported_nails_bundle, nails_dir, tmp_path, capsys):
    """A bundle made before identities were recorded still runs; validate catches the
    swapped model.onnx by its max |dp| on golden.npz, whatever its mIoU."""
    root = _copy(reexported, tmp_path, "legacy")
    path = os.path.join(root, CONTRACT_JSON)
    with open(path) as handle:
        data = json.load(handle)
    data["artifacts"] = {}
    with open(path, "w") as handle:
        json.dump(data, handle)
    status = cli.run(validate.main, validate.parse_args,
                     ["--bundle", root, "--formats", "onnx"] + FAST)
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    shutil.copy(os.path.join(exported_nails_bundle, ONNX), os.path.join(root, ONNX))
    assert _run_camera(root, nails_dir).returncode == 0
    status = cli.run(validate.main, validate.parse_args,
                     ["--bundle", root, "--formats", "onnx"] + FAST)
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
    found = re.search(r"onnx \(model\.onnx\): max \|dp\| (\S+) against golden\.npz is above "
                      r"the FP32 bound 1e-04", err)
    assert found and float(found.group(1)) > 1e-3, err
    with open(os.path.join(root, validate.VALIDATION_JSON)) as handle:
        row = [r for r in json.load(handle)["formats"] if r["format"] == "onnx"][0]
    assert row["status"] in ("failed", "below tolerance") and np.isfinite(row["miou"])
