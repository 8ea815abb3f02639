"""train/init_from.py (train/train.py --init-from) and the loop it closes: deploy, collect
on the camera, correct the masks, fine-tune, re-export, redeploy."""
import csv
import json
import os

import cv2
import numpy as np
import pytest

from nanoseg.bundle import Bundle
from nanoseg.contract import Contract, save_contract
from nanoseg.errors import NanosegError
from train.backbones import normalization_for
from tests.train_helpers import train_args


@pytest.fixture
def start_bundle(tmp_path):
    """A bundle's contract (128x128 nail, mobilenetv2's normalization); refusals happen
    before its model.h5 is read."""
    folder = tmp_path / "start"
    folder.mkdir()
    normalization, order = normalization_for("mobilenetv2")
    contract = Contract.create(128, 128, ["nail"], "sigmoid", normalization,
                               channel_order=order, backbone="mobilenetv2")
    save_contract(contract, str(folder / "contract.json"))
    (folder / "model.h5").write_bytes(b"")
    return str(folder)


@pytest.mark.parametrize("extra, message", [
    (["--size", "96", "96"], r"takes 128x128 inputs but --size is 96 96: drop --size"),
    (["--classes", "cuticle"], r"predicts background, nail but the data gives background, "
                               r"cuticle: pass --classes nail"),
    (["--normalization", "imagenet"], r"trained with normalization backbone:tf \(RGB\) but "
                                      r"this run asks imagenet"),
])
def test_a_run_whose_contract_differs_from_the_start_bundle_is_refused_in_one_line(
        start_bundle, nails_dir, tmp_path, extra, message):
    from train import train as train_cli
    argv = train_args(tmp_path / "out", nails_dir, "flat")
    for flag in ("--size", "--backbone"):   # train_args passes them; drop to inherit
        index = argv.index(flag)
        del argv[index:index + (3 if flag == "--size" else 2)]
    args = train_cli.parse_args(argv + ["--init-from", start_bundle] + extra)
    with pytest.raises(NanosegError, match=message) as caught:
        train_cli.train(args)
    assert "\n" not in str(caught.value)
    assert not os.path.exists(str(tmp_path / "out")) and \
        not os.path.exists(str(tmp_path / "out.partial"))


def test_a_folder_without_a_model_is_refused_as_a_start(tmp_path, nails_dir):
    from train import train as train_cli
    args = train_cli.parse_args(train_args(tmp_path / "out", nails_dir, "flat") +
                                ["--init-from", str(tmp_path)])
    with pytest.raises(NanosegError, match=r"model.h5 is missing .*--init-from needs"):
        train_cli.train(args)


def test_only_the_inherited_flags_given_on_the_command_line_count():
    from train.init_from import given_flags
    assert given_flags(["--data", "d", "--size=96", "96", "--classes", "a"]) == \
        ["--classes", "--size"]


# -- the loop on real frames --------------------------------------------------------------------
def write_nails_video(nails_dir, path, count, size=(320, 240)):
    """An mp4 of ``count`` real nails pictures, one per frame; the picture names in order."""
    names = sorted(os.listdir(os.path.join(nails_dir, "images")))[:count]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, size)
    for name in names:
        image = cv2.imread(os.path.join(nails_dir, "images", name), cv2.IMREAD_COLOR)
        writer.write(cv2.resize(image, size, interpolation=cv2.INTER_AREA))
    writer.release()
    return names


def test_the_loop_collects_real_frames_fine_tunes_on_corrected_masks_and_reexports(
        exported_nails_bundle, nails_dir, tmp_path):
    import nanoseg
    from convert import export_onnx
    from edge import run_camera
    from train import train as train_cli
    # deploy + collect: the camera is a video of real nails pictures
    names = write_nails_video(nails_dir, tmp_path / "camera.mp4", 12)
    collected = tmp_path / "collected"
    run_camera.main(run_camera.parse_args([
        "--bundle", exported_nails_bundle, "--source", str(tmp_path / "camera.mp4"),
        "--headless", "--backend", "onnxruntime", "--collect", str(collected),
        "--collect-uncertain", "0", "--collect-gap", "0", "--collect-max", "10",
        "--summary", str(tmp_path / "summary.json")]))
    summary = json.load(open(str(tmp_path / "summary.json")))
    sink = [s for s in summary["sinks"] if s["sink"] == "CollectSink"][0]
    with open(str(collected / "collected.csv")) as handle:
        rows = list(csv.DictReader(handle))
    assert sink["kept"] == len(rows) == 10 and sink["kept_uncertain"] == 10
    assert "--collect-max 10" in sink["collect_stopped"]
    # correct the masks: the pre-labels are replaced by the real masks of those frames
    for row in rows:
        mask_path = str(collected / row["mask"])
        pre_label = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
        assert pre_label.shape == (240, 320) and set(np.unique(pre_label)) <= {0, 255}
        real = cv2.imread(os.path.join(nails_dir, "labels", names[int(row["frame"])]),
                          cv2.IMREAD_GRAYSCALE)
        assert cv2.imwrite(mask_path, cv2.resize(real, (320, 240),
                                                 interpolation=cv2.INTER_NEAREST))
    # fine-tune one epoch on the folder as it is, starting from the deployed bundle
    out = tmp_path / "finetuned"
    status = train_cli.main(train_cli.parse_args([
        "--data", str(collected), "--layout", "flat", "--init-from", exported_nails_bundle,
        "--epochs", "1", "--batch", "2", "--val-fraction", "0.3", "--verbose", "0",
        "--out", str(out)]))
    assert status == 0
    start, tuned = Bundle(exported_nails_bundle).contract(), Bundle(str(out)).contract()
    assert tuned.preprocessing_dict() == start.preprocessing_dict()
    assert tuned.extra["init_from"]["bundle"] == Bundle(exported_nails_bundle).root
    # re-export with parity, then redeploy
    export_onnx.main(export_onnx.parse_args(["--bundle", str(out), "--golden", "3"]))
    parity = json.load(open(str(out / "parity.json")))
    assert parity["onnx"]["max_abs_diff"] < 1e-4
    frame = cv2.imread(str(collected / rows[0]["image"]))
    with nanoseg.load(str(out), backend="onnxruntime") as seg:
        assert seg.labels(frame).shape == frame.shape[:2]
