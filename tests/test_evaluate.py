"""train/evaluate.py: hand-computed IoU through any predict function, and the CLI on a bundle."""
import json
import os
import shutil

import numpy as np
import pytest

from edge import cli
from edge.bundle import EVALUATION_JSON, EVALUATION_PNG
from edge.contract import Contract, Normalization
from edge.errors import NanosegError
from train import evaluate as evaluate_cli


def _contract(classes):
    activation = "sigmoid" if len(classes) == 1 else "softmax"
    return Contract.create(4, 4, list(classes), activation, Normalization.named("scale"))


def test_sigmoid_evaluation_matches_hand_iou():
    """The "backend" reads probabilities straight out of x: evaluate() only sees predict()."""
    gt = np.array([[1, 1, 0, 0],
                   [1, 1, 0, 0],
                   [0, 0, 255, 255],
                   [0, 0, 0, 0]], np.uint8)
    pred = np.array([[1, 0, 0, 0],
                     [1, 1, 1, 0],
                     [0, 0, 1, 1],      # on ignored pixels: not counted
                     [0, 0, 0, 0]], np.uint8)
    x = np.repeat((pred * 0.9 + 0.05).astype(np.float32)[:, :, None], 3, axis=2)
    calls = []

    def predict(batch):
        calls.append(batch.shape)
        return batch[..., :1]

    report = evaluate_cli.evaluate(predict, _contract(["nail"]), [(x, gt), (x, gt)],
                                   batch_size=4)
    # nail: TP 3, FP 1 ((1,2)), FN 1 ((0,1)) -> 3/5; background: TP 9, FP 1, FN 1 -> 9/11
    assert report["iou_per_class"]["nail"] == pytest.approx(0.6)
    assert report["iou_per_class"]["background"] == pytest.approx(9 / 11.0)
    assert report["miou"] == pytest.approx((0.6 + 9 / 11.0) / 2)
    assert report["pixel_accuracy"] == pytest.approx(12 / 14.0)
    assert report["scored_pixels"] == 28 and calls == [(2, 4, 4, 3)]


def test_softmax_evaluation_batches_and_hand_iou():
    gt = np.array([[0, 1, 2, 2]] * 4, np.uint8)
    pred = np.array([[0, 1, 2, 1]] * 4, np.uint8)
    x = np.eye(3, dtype=np.float32)[pred]               # one-hot "probabilities"
    report = evaluate_cli.evaluate(lambda b: b, _contract(["a", "b"]), [(x, gt)] * 3,
                                   batch_size=2)
    # label 1: TP 4, FP 4 -> 0.5; label 2: TP 4, FN 4 -> 0.5; background 1.0
    assert report["iou_per_class"] == {"background": 1.0, "a": 0.5, "b": 0.5}
    assert report["images"] == 3


def test_predict_must_keep_the_batch_axis():
    x = np.zeros((4, 4, 3), np.float32)
    with pytest.raises(NanosegError, match="keep the batch axis"):
        evaluate_cli.evaluate(lambda b: b[0], _contract(["a", "b"]),
                              [(x, np.zeros((4, 4), np.uint8))] * 2)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, trained_nails_bundle):
    """A private copy of the session's nails bundle (these tests rewrite its evaluation)."""
    copy = str(tmp_path_factory.mktemp("eval") / "bundle")
    shutil.copytree(trained_nails_bundle, copy)
    return copy


def test_cli_reproduces_the_training_evaluation(small_bundle, nails_dir, capsys):
    """Reloading model.h5 and scoring the val split gives the numbers training saved."""
    with open(os.path.join(small_bundle, EVALUATION_JSON)) as handle:
        at_training = json.load(handle)
    os.remove(os.path.join(small_bundle, EVALUATION_PNG))
    argv = ["--bundle", small_bundle, "--data", nails_dir, "--layout", "flat",
            "--split", "val"]
    assert cli.run(evaluate_cli.main, evaluate_cli.parse_args, argv) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "nail" in printed
    with open(os.path.join(small_bundle, EVALUATION_JSON)) as handle:
        again = json.load(handle)
    assert again["confusion_matrix"] == at_training["confusion_matrix"]
    assert again["images"] == 10 and os.path.isfile(os.path.join(small_bundle, EVALUATION_PNG))


def test_cli_defaults_to_the_training_dataset(small_bundle):
    report = evaluate_cli.evaluate_bundle(small_bundle, split="train", save=False)
    assert report["images"] == 42 and report["split"] == "train"


def test_cli_errors_are_one_line(small_bundle, tmp_path, camvid_dir, capsys):
    assert cli.run(evaluate_cli.main, evaluate_cli.parse_args,
                   ["--bundle", str(tmp_path / "none")]) == 2
    assert "bundle folder not found" in capsys.readouterr().err
    argv = ["--bundle", small_bundle, "--data", camvid_dir, "--layout", "camvid",
            "--classes", "car", "road"]
    assert cli.run(evaluate_cli.main, evaluate_cli.parse_args, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "the bundle's model predicts ['nail']" in err
