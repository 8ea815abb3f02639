"""train/train.py on real data: a crash-and-resume nails run, a mixed-precision CamVid run,
and the one-line errors users get for bad input."""
import csv
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from nanoseg import bundle as names
from nanoseg import cli
from nanoseg.contract import load_contract
from nanoseg.files import sha256_file
from nanoseg.errors import NanosegError
from tests.train_helpers import train_args
from train import bundle_io, callbacks
from train import train as train_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUNDLE_FILES = (names.MODEL_H5, names.WEIGHTS_H5, names.MODEL_JSON, "contract.json",
                names.TRAIN_LOG, names.CURVES_PNG, names.EVALUATION_JSON,
                names.EVALUATION_PNG)
# What 3 tiny epochs from scratch (128 px, batch 2, no ImageNet weights) can promise, from
# measurement: the training-mode IoU rises (0.074 -> 0.147), but on held-out images the nail
# IoU is still 0.0 (10 images; 64 px for 4 epochs at lr 3e-3 stayed <= 0.078): after ~60
# steps the BatchNorm moving statistics are half warmed up (1 - 0.99**63 = 0.47). So the
# floor is the majority-class predictor ("all background": mIoU = background share / 2,
# pixel accuracy = background share). A model that collapsed to "all nail" (seen at epoch 1
# of a 64 px run: val IoU = nail share, background IoU ~ 0) or a broken label pipeline
# fails it. Real accuracy needs ImageNet weights and 40 epochs (README).
FLOOR_SLACK = 0.01


class SimulatedCrash(Exception):
    """Raised by a callback after the first epoch, standing in for a killed process."""


def _read_log(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def nails_run(tmp_path_factory, nails_dir):
    """3 epochs on nails: crash after epoch 1, then --resume finishes epochs 2 and 3."""
    import tensorflow as tf

    class CrashAfterFirstEpoch(tf.keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise SimulatedCrash("epoch {}".format(epoch))

    out = str(tmp_path_factory.mktemp("nails") / "bundle")
    argv = train_args(out, nails_dir, "flat", ["nail"], size=(128, 128), epochs=3, batch=2)
    with pytest.raises(SimulatedCrash):
        train_cli.train(train_cli.parse_args(argv), extra_callbacks=[CrashAfterFirstEpoch()])
    after_crash = {"out_exists": os.path.exists(out),
                   "state": bundle_io.read_state(bundle_io.partial_dir(out))}
    assert train_cli.main(train_cli.parse_args(argv + ["--resume"])) == 0
    return {"out": out, "after_crash": after_crash}


def test_crash_leaves_no_bundle_and_resume_continues_epochs(nails_run):
    assert not nails_run["after_crash"]["out_exists"], "a crashed run left a bundle folder"
    crashed = nails_run["after_crash"]["state"]
    assert crashed["epochs_done"] == 1 and crashed["mask_invert"] is False
    counters = crashed["counters"]           # plateau counters travel with the epoch count
    assert counters["early_stopping"]["wait"] == 0
    assert counters["early_stopping"]["best"] == pytest.approx(crashed["best"], rel=1e-6)
    assert set(counters["reduce_lr"]) == {"wait", "best", "cooldown_counter"}
    rows = _read_log(os.path.join(nails_run["out"], names.TRAIN_LOG))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]       # carried on, not restarted
    assert not os.path.exists(bundle_io.partial_dir(nails_run["out"]))
    state = bundle_io.read_state(nails_run["out"])
    assert state["epochs_done"] == 3
    # the resumed fit put the counters back and kept them up: early stopping's best is the
    # checkpoint's best over all three epochs, not only over the two after the resume
    assert state["counters"]["early_stopping"]["best"] == pytest.approx(state["best"],
                                                                        rel=1e-6)
    assert min(float(r["val_loss"]) for r in rows) == pytest.approx(state["best"], rel=1e-5)
    assert all(float(r["lr"]) > 0 for r in rows)       # ReduceLROnPlateau logs the rate


def test_loss_falls_and_val_iou_clears_floor(nails_run):
    rows = _read_log(os.path.join(nails_run["out"], names.TRAIN_LOG))
    losses = [float(r["loss"]) for r in rows]
    train_iou = [float(r["iou_score"]) for r in rows]
    assert losses[-1] < losses[0], losses
    assert train_iou[-1] > train_iou[0], train_iou
    with open(os.path.join(nails_run["out"], names.EVALUATION_JSON)) as handle:
        report = json.load(handle)
    matrix = np.array(report["confusion_matrix"], dtype=float)
    background_share = matrix[0].sum() / matrix.sum()
    assert 0.9 < background_share < 0.97                 # nails are ~6 % of val pixels
    assert report["pixel_accuracy"] >= background_share - FLOOR_SLACK, report
    assert report["miou"] >= background_share / 2 - FLOOR_SLACK, report
    assert report["iou_per_class"]["background"] >= background_share - FLOOR_SLACK


def test_bundle_is_complete_and_consistent(nails_run):
    out = nails_run["out"]
    missing = [n for n in BUNDLE_FILES if not os.path.isfile(os.path.join(out, n))]
    assert not missing
    split = _read_log(os.path.join(out, names.SPLIT_CSV))      # image, mask, split rows
    assert [r["split"] for r in split].count("val") == 10 and len(split) == 52
    data = load_contract(os.path.join(out, "contract.json")).extra["dataset"]["root"]
    assert all(os.path.isfile(os.path.join(data, r["image"])) for r in split)
    assert os.listdir(os.path.join(out, names.LOGS_DIR))          # TensorBoard events
    contract = load_contract(os.path.join(out, "contract.json"))
    assert contract.activation == "sigmoid" and contract.class_names == ["background", "nail"]
    assert contract.backbone == "mobilenetv2" and contract.size == (128, 128)
    assert contract.normalization.name == "backbone:tf"
    for name in (names.MODEL_H5, names.WEIGHTS_H5):
        assert contract.artifacts[name]["sha256"] == sha256_file(os.path.join(out, name))
    extra = contract.extra
    assert extra["dataset"]["layout"] == "flat" and extra["dataset"]["val_images"] == 10
    assert extra["precision"] == "float32" and extra["train_args"]["epochs"] == 3
    assert 0.0 <= extra["keras_val_iou"] <= 1.0
    assert set(contract.versions) >= {"tensorflow", "keras", "segmentation_models", "numpy",
                                      "opencv"}


def test_out_with_another_model_is_refused(nails_run, nails_dir, capsys):
    argv = train_args(nails_run["out"], nails_dir, "flat", ["nail"], backbone="resnet18",
                      size=(128, 128))
    assert cli.run(train_cli.main, train_cli.parse_args, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "holds a bundle of another model" in err and "--overwrite" in err


@pytest.fixture(scope="module")
def camvid_mixed(tmp_path_factory, camvid_dir):
    """Softmax on camvid-mini with 3 classes + background, trained in mixed precision."""
    from tests.train_helpers import train_small_bundle
    out = tmp_path_factory.mktemp("camvid") / "bundle"
    return train_small_bundle(out, camvid_dir, "camvid", classes=["car", "road", "pedestrian"],
                              size=(64, 64), epochs=1, batch=4,
                              extra_args=["--mixed-precision"])


def test_camvid_softmax_mixed_precision(camvid_mixed):
    import tensorflow as tf
    from train.model import load_model_for_inference
    contract = load_contract(os.path.join(camvid_mixed, "contract.json"))
    assert contract.activation == "softmax" and contract.output_channels == 4
    assert [n.lower() for n in contract.class_names] == ["background", "car", "road",
                                                         "pedestrian"]
    assert [c["source_id"] for c in contract.classes[1:]] == [8, 3, 9]
    assert contract.extra["precision"] == "mixed_float16"
    assert tf.keras.mixed_precision.global_policy().name == "float32"   # restored
    rows = _read_log(os.path.join(camvid_mixed, names.TRAIN_LOG))
    assert all(math.isfinite(float(r[k])) for r in rows for k in ("loss", "val_loss"))
    model = load_model_for_inference(os.path.join(camvid_mixed, names.MODEL_H5))
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    out = model(np.zeros((1, 64, 64, 3), np.float32))
    assert out.dtype == tf.float32 and out.shape == (1, 64, 64, 4)
    assert np.allclose(out.numpy().sum(axis=-1), 1.0, atol=1e-5)


def test_classes_not_in_dataset(tmp_path, camvid_dir):
    args = train_cli.parse_args(train_args(tmp_path / "b", camvid_dir, "camvid",
                                           ["car", "unicorn"], size=(64, 64)))
    with pytest.raises(NanosegError, match="unicorn"):
        train_cli.main(args)


def test_unknown_backbone(tmp_path, nails_dir):
    args = train_cli.parse_args(train_args(tmp_path / "b", nails_dir, "flat",
                                           backbone="resnet19"))
    with pytest.raises(NanosegError, match="unknown --backbone 'resnet19'.*mobilenetv2"):
        train_cli.main(args)


def test_imagenet_weights_offline_is_one_clear_line(tmp_path, nails_dir, capsys):
    """This machine has no internet: the download fails, the message says what to do."""
    argv = train_args(tmp_path / "b", nails_dir, "flat", size=(64, 64))
    argv[argv.index("--encoder-weights") + 1] = "imagenet"
    assert cli.run(train_cli.main, train_cli.parse_args, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "could not be downloaded" in err and "--encoder-weights none" in err
    assert "mobilenet_v2_weights" in err and "~/.keras/models" in err
    assert not os.path.exists(tmp_path / "b")                  # nothing half-written


@pytest.mark.parametrize("extra,message", [
    (["--bn-momentum", "1.5"], "--bn-momentum must be in"),
    (["--resume", "--strategy", "multiworker"], "--resume is not supported with --strategy "
                                                 "multiworker"),
    (["--classes", "nail=1", "nail=2"], "class name 'nail' repeats 'nail' in nail=1 nail=2"),
], ids=["bn-momentum", "resume-multiworker", "duplicate-class"])
def test_bad_combinations_fail_before_anything_is_written(tmp_path, nails_dir, extra,
                                                          message):
    argv = train_args(tmp_path / "b", nails_dir, "flat", size=(64, 64)) + extra
    with pytest.raises(NanosegError, match=message):
        train_cli.train(train_cli.parse_args(argv))
    assert not os.listdir(str(tmp_path))


def test_corrupt_image_stops_training_with_one_line_naming_it(tmp_path, capsys):
    """Images decode inside tf.data; the reader's message must still be the user's error."""
    from tools import synthetic
    data = tmp_path / "synth"
    synthetic.make_synthetic_dataset(str(data), count=12, size=(64, 64), seed=1)
    images = sorted((data / "images").iterdir())
    broken = images[5]
    broken.write_bytes(b"this is not a picture")
    argv = train_args(tmp_path / "b", data, "flat", ["nail"], size=(64, 64), epochs=1,
                      batch=2, extra_args=["--log-level", "ERROR"])
    assert cli.run(train_cli.main, train_cli.parse_args, argv) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines()
             if not line.startswith("Segmentation Models: using")]   # its import banner
    assert len(lines) == 1, lines
    err = lines[0]
    assert err.startswith("error: cannot read image")
    assert str(broken) in err and "--resume" in err
    assert not os.path.exists(str(tmp_path / "b"))            # no half bundle


def test_mirrored_strategy_trains_and_records_its_replicas(tmp_path):
    """--strategy mirrored on this CPU (one replica): the whole path a multi-GPU PC takes,
    distributed datasets, per-replica batches and the bundle written after it."""
    from tools import synthetic
    data = tmp_path / "synth"
    synthetic.make_synthetic_dataset(str(data), count=10, size=(64, 64), seed=2)
    out = tmp_path / "bundle"
    argv = train_args(out, data, "flat", ["nail"], size=(64, 64), epochs=1, batch=2,
                      extra_args=["--strategy", "mirrored", "--log-level", "WARNING"])
    assert train_cli.main(train_cli.parse_args(argv)) == 0
    contract = load_contract(os.path.join(str(out), "contract.json"))
    assert contract.extra["strategy"] == "mirrored" and contract.extra["replicas"] >= 1
    assert len(_read_log(os.path.join(str(out), names.TRAIN_LOG))) == 1


def test_bad_numbers_and_weights_path(tmp_path, nails_dir):
    with pytest.raises(NanosegError, match="--size 100 100 must be"):
        train_cli.main(train_cli.parse_args(train_args(tmp_path / "b", nails_dir, "flat",
                                                       size=(100, 100))))
    argv = train_args(tmp_path / "b", nails_dir, "flat", size=(64, 64))
    argv[argv.index("--encoder-weights") + 1] = str(tmp_path / "missing.h5")
    with pytest.raises(NanosegError, match="missing.h5 is not a file"):
        train_cli.main(train_cli.parse_args(argv))
    with pytest.raises(NanosegError, match="--epochs must be at least 1"):
        train_cli.main(train_cli.parse_args(argv[:-2] + ["--out", "x", "--epochs", "0"]))


def test_help_runs_as_a_script_from_the_repo_root():
    result = subprocess.run([sys.executable, "train/train.py", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout.split())          # argparse wraps lines anywhere
    for text in ("--mixed-precision", "--strategy", "--resume", "(default: mobilenetv2)",
                 "(default: [256, 256])", "(default: imagenet)"):
        assert text in help_text, text


def test_callbacks_run_in_the_order_resume_and_the_lr_column_need(tmp_path):
    """Keras calls callbacks in list order: the plateau callback must precede the CSV logger
    (it adds "lr" to the logs) and the resume state must follow both counted callbacks."""
    import tensorflow as tf
    made = callbacks.make_callbacks(str(tmp_path), {"contract": {}, "mask_invert": False},
                                    False, 4, 0)
    kinds = [type(c).__name__ for c in made]
    assert kinds[0] == "ModelCheckpoint" and kinds[-1] == "ResumeState"
    position = {kind: kinds.index(kind) for kind in kinds}
    assert position["ReduceLROnPlateau"] < position["CSVLogger"]
    assert position["EarlyStopping"] < position["ResumeState"]
    assert isinstance(made[position["ReduceLROnPlateau"]],
                      tf.keras.callbacks.ReduceLROnPlateau)


def test_resume_restores_plateau_counters_after_keras_resets_them():
    """EarlyStopping/ReduceLROnPlateau reset in on_train_begin; the resume callback, later
    in the list, must put the saved counters back, or a resumed run waits a whole patience
    again before stopping or lowering the rate."""
    import tensorflow as tf

    def fresh():
        return {"early_stopping": tf.keras.callbacks.EarlyStopping(patience=5),
                "reduce_lr": tf.keras.callbacks.ReduceLROnPlateau(patience=2, cooldown=3)}

    before = fresh()
    for callback in before.values():
        callback.on_train_begin()
    before["early_stopping"].wait, before["early_stopping"].best = 3, 0.25
    before["reduce_lr"].wait, before["reduce_lr"].cooldown_counter = 1, 2
    before["reduce_lr"].best = 0.5
    saved = json.loads(json.dumps(callbacks.callback_counters(before)))   # as the state file

    after = fresh()
    resume = callbacks.resume_state_callback("unused", None, {}, after, saved)
    for callback in list(after.values()) + [resume]:    # Keras' order: resume comes last
        callback.on_train_begin()
    assert (after["early_stopping"].wait, after["early_stopping"].best) == (3, 0.25)
    assert (after["reduce_lr"].wait, after["reduce_lr"].cooldown_counter) == (1, 2)
    assert after["reduce_lr"].best == 0.5

    untouched = fresh()              # an infinite best is saved as None and left alone
    untouched["early_stopping"].on_train_begin()
    callbacks.restore_callback_counters(untouched, {"early_stopping": {"best": None}})
    assert untouched["early_stopping"].best == np.inf


# -- the nail tutorial's own layout, as a user runs it: the CLI in a subprocess ---------------------
TF_FACTORY_NOISE = "Unable to register"     # TF 2.15's cuDNN/cuFFT/cuBLAS E-lines on a CPU


@pytest.fixture(scope="module")
def factory_lines_appear():
    """The control for every "no factory lines" check: does ``import tensorflow`` print
    them at all here, without :func:`keras_env.prepare`? If not, those checks prove nothing."""
    env = dict(os.environ, PYTHONPATH="", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", "import tensorflow"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, timeout=300)
    return TF_FACTORY_NOISE in result.stderr


def _skip_unless_factory_lines_appear(factory_lines_appear):
    if not factory_lines_appear:
        pytest.skip("this TensorFlow prints no duplicate-factory lines without "
                    "keras_env.prepare(): the 'no factory lines' check would be vacuous")


def _run_script(script, *argv):
    """A CLI as a user runs it; its stderr is what they see."""
    env = dict(os.environ, PYTHONPATH="")
    command = [sys.executable, os.path.join(ROOT, script)] + [str(a) for a in argv]
    return subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=900)


@pytest.fixture(scope="module")
def tutorial_run(tmp_path_factory, nails_dir):
    """train/train.py on ROOT/{train,valid}/{images,masks} + csv_file/ (real nails, masks
    saved inverted: the nail is the dark value), --mask-invert, 3 validation images with
    --batch 4: a validation split smaller than one batch, scored whole."""
    from tests.train_helpers import make_tutorial_layout
    root = str(tmp_path_factory.mktemp("tutorial"))
    chosen = make_tutorial_layout(nails_dir, os.path.join(root, "data"), train_count=5,
                                  valid_count=3, invert=True)
    out = os.path.join(root, "bundle")
    result = _run_script("train/train.py", *train_args(
        out, os.path.join(root, "data"), "csv", ["nail"], size=(64, 64), epochs=1, batch=4,
        extra_args=["--mask-invert", "--bn-momentum", "0.9"]))
    assert result.returncode == 0, result.stderr
    return {"out": out, "data": os.path.join(root, "data"), "chosen": chosen,
            "stderr": result.stderr}


def test_tutorial_csv_layout_trains_on_its_own_split(tutorial_run):
    out, chosen = tutorial_run["out"], tutorial_run["chosen"]
    split = _read_log(os.path.join(out, names.SPLIT_CSV))
    by_split = {s: sorted(os.path.basename(r["image"]) for r in split if r["split"] == s)
                for s in ("train", "val")}
    assert by_split == {"train": chosen["train"], "val": chosen["valid"]}
    contract = load_contract(os.path.join(out, "contract.json"))
    info = contract.extra["dataset"]
    assert info["layout"] == "csv" and info["mask_invert"] is True
    assert (info["train_images"], info["val_images"]) == (5, 3)
    from nanoseg.evaluation import dataset_for
    reopened = dataset_for(contract, bundle_dir=out)       # evaluate/export/validate's view
    assert [os.path.basename(s.image_path) for s in reopened.samples] == chosen["valid"]
    assert all("/valid/masks/" in s.mask_path.replace(os.sep, "/") for s in reopened.samples)
    _, labels = reopened.load(0)
    assert 0 < labels.mean() < 0.5          # inverted back: nails are the minority class


def test_tutorial_log_names_the_class_value_and_its_share(tutorial_run):
    err = tutorial_run["stderr"]
    line = next(l for l in err.splitlines() if "binary masks:" in l)
    assert "class 'nail' = mask values <= 127 (the dark value, --mask-invert" in line
    share = float(line.split(": ")[-1].split("%")[0])
    assert 0.5 < share < 30.0, line                 # nails: a few % of each picture


def test_train_cli_shows_no_tensorflow_factory_lines(tutorial_run, factory_lines_appear):
    _skip_unless_factory_lines_appear(factory_lines_appear)
    assert TF_FACTORY_NOISE not in tutorial_run["stderr"]


def test_resume_refuses_to_drop_or_add_mask_invert(tutorial_run):
    """The finished run trained with --mask-invert; resuming it without the flag would
    silently train on the opposite labels."""
    out, data = tutorial_run["out"], tutorial_run["data"]
    assert bundle_io.read_state(out)["mask_invert"] is True
    argv = train_args(out, data, "csv", ["nail"], size=(64, 64), epochs=2, batch=4,
                      extra_args=["--bn-momentum", "0.9", "--resume"])
    with pytest.raises(NanosegError, match=r"^--resume: the checkpoint was trained with "
                                           r"--mask-invert: resume with it or pass --overwrite$"):
        train_cli.train(train_cli.parse_args(argv))


def test_validation_smaller_than_a_batch_scores_every_image(tutorial_run):
    """val_loss of the one epoch == the loss over exactly the 3 validation images."""
    import tensorflow as tf
    from nanoseg.evaluation import dataset_for
    from train.model import compile_model, load_model_for_inference
    from train.pipeline import make_tf_dataset
    out = tutorial_run["out"]
    contract = load_contract(os.path.join(out, "contract.json"))
    rows = _read_log(os.path.join(out, names.TRAIN_LOG))
    assert len(rows) == 1
    model = compile_model(load_model_for_inference(os.path.join(out, names.MODEL_H5)),
                          contract)
    val_set = dataset_for(contract, bundle_dir=out)
    assert len(val_set) == 3
    everything = model.evaluate(make_tf_dataset(val_set, contract, 4, None, False, 0),
                                verbose=0, return_dict=True)
    two_of_three = model.evaluate(make_tf_dataset(val_set, contract, 2, None, False, 0,
                                                  drop_remainder=True),
                                  verbose=0, return_dict=True)
    assert float(rows[0]["val_loss"]) == pytest.approx(everything["loss"], rel=1e-4)
    assert abs(two_of_three["loss"] - everything["loss"]) > 1e-4   # the check can fail
    tf.keras.backend.clear_session()


def test_evaluate_and_export_clis_show_no_tensorflow_factory_lines(tutorial_run,
                                                                   factory_lines_appear):
    out = tutorial_run["out"]
    evaluated = _run_script("train/evaluate.py", "--bundle", out, "--no-save")
    assert evaluated.returncode == 0, evaluated.stderr
    assert "mIoU" in evaluated.stdout
    exported = _run_script("convert/export_onnx.py", "--bundle", out, "--golden", "1",
                           "--min-agreement", "0", "--fp16-min-agreement", "0",
                           "--max-diff", "1", "--fp16-max-diff", "1")
    assert exported.returncode == 0, exported.stderr
    _skip_unless_factory_lines_appear(factory_lines_appear)
    assert TF_FACTORY_NOISE not in evaluated.stderr, evaluated.stderr
    assert TF_FACTORY_NOISE not in exported.stderr, exported.stderr


def test_known_tensorflow_noise_is_dropped_and_real_errors_kept():
    """In a fresh process: the duplicate-factory lines vanish, a real E-line written to fd 2
    during the same import survives, in order."""
    code = "\n".join([
        "import os, sys",
        "from train import keras_env",
        "keras_env.prepare()",
        "with keras_env.filtered_stderr_fd():",
        "    os.write(2, b'E cuda_dnn.cc:9261] Unable to register cuDNN factory: Attempting to "
        "register factory for plugin cuDNN when one has already been registered\\n')",
        "    os.write(2, b'E real.cc:1] something really broke\\n')",
        "import tensorflow",
        "print(tensorflow.__version__)",
    ])
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert TF_FACTORY_NOISE not in result.stderr
    assert "E real.cc:1] something really broke" in result.stderr
    assert result.stdout.strip().startswith("2.")


_NOISE_LINE = ("b'E cuda_dnn.cc:9261] Unable to register cuDNN factory: Attempting to register "
               "factory for plugin cuDNN when one has already been registered\\n'")


def _run_code(code):
    return subprocess.run([sys.executable, "-c", "\n".join(code)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=120)


def test_stderr_written_before_a_crash_in_the_filter_is_not_lost():
    result = _run_code([
        "import os",
        "from train import keras_env",
        "with keras_env.filtered_stderr_fd():",
        "    os.write(2, b'E real.cc:1] the last words\\n')",
        "    os.write(2, " + _NOISE_LINE + ")",
        "    os.abort()",
    ])
    assert result.returncode != 0
    assert "E real.cc:1] the last words" in result.stderr
    assert TF_FACTORY_NOISE not in result.stderr


def test_filter_steps_aside_when_stderr_is_closed_or_none():
    closed = _run_code([
        "import os, sys",
        "from train import keras_env",
        "os.close(2)",
        "with keras_env.filtered_stderr_fd():",
        "    print('body ran')",
    ])
    assert closed.returncode == 0 and closed.stdout == "body ran\n"
    none = _run_code([
        "import sys",
        "from train import keras_env",
        "sys.stderr = None",
        "with keras_env.filtered_stderr_fd():",
        "    print('body ran')",
    ])
    assert none.returncode == 0 and none.stdout == "body ran\n", none.stderr


def test_split_smaller_than_a_batch_fails_before_any_folder(tmp_path, nails_dir):
    from tests.train_helpers import make_tutorial_layout
    data = str(tmp_path / "data")
    make_tutorial_layout(nails_dir, data, train_count=3, valid_count=2)
    out = tmp_path / "runs" / "b"
    argv = train_args(out, data, "flat", ["nail"], size=(64, 64), epochs=1, batch=4)
    with pytest.raises(NanosegError, match="the training split has 3 images, fewer than one "
                                           "global batch of 4"):
        train_cli.train(train_cli.parse_args(argv))
    assert not os.path.exists(str(out)) and not os.path.exists(bundle_io.partial_dir(out))


def _finished_pid():
    """The pid of a process that has exited (what a crashed run leaves in owner.json)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=60)
    return child.pid


def _claim(work, pid):
    with open(os.path.join(work, names.OWNER_JSON), "w") as handle:
        json.dump({"pid": pid, "host": __import__("socket").gethostname()}, handle)


def test_partial_without_a_finished_epoch_does_not_need_overwrite(tmp_path):
    """A run that failed in its first epoch wrote state.json (0 epochs) and exited: the
    next run starts over by itself instead of asking for --overwrite."""
    out = str(tmp_path / "b")
    work = bundle_io.open_work_dir(out)
    bundle_io.write_state(work, 0, None)
    _claim(work, _finished_pid())
    again = bundle_io.open_work_dir(out)
    assert again == work and not os.listdir(os.path.join(work, names.CHECKPOINTS_DIR))
    bundle_io.write_state(work, 1, 0.5)
    _claim(work, _finished_pid())
    with pytest.raises(NanosegError, match="--resume to continue it or --overwrite"):
        bundle_io.open_work_dir(out)


@pytest.fixture
def live_pid():
    """The pid of a process that runs until the test ends (a training still at work)."""
    child = subprocess.Popen(["sleep", "600"])
    yield child.pid
    child.kill()
    child.wait(timeout=60)


def test_a_live_run_in_its_first_epoch_is_never_removed(tmp_path, live_pid):
    out = str(tmp_path / "b")
    work = bundle_io.open_work_dir(out)
    bundle_io.write_state(work, 0, None)
    _claim(work, live_pid)
    with pytest.raises(NanosegError, match=r"^\S+ belongs to a training that is still "
                                           r"running \(pid {} ".format(live_pid)):
        bundle_io.open_work_dir(out)
    assert os.path.isfile(os.path.join(work, names.CHECKPOINTS_DIR, names.STATE_JSON))
    _claim(work, _finished_pid())                # its owner is gone, but a stranger's file
    with open(os.path.join(work, "notes.txt"), "w") as handle:
        handle.write("mine")
    with pytest.raises(NanosegError, match="--overwrite to start over"):
        bundle_io.open_work_dir(out)
    assert os.path.isfile(os.path.join(work, "notes.txt"))


def test_a_file_named_like_the_work_folder_is_one_line_error(tmp_path):
    out = str(tmp_path / "b")
    with open(bundle_io.partial_dir(out), "w") as handle:
        handle.write("not a folder")
    for resume in (False, True):
        with pytest.raises(NanosegError, match=r"b\.partial is a file, not an interrupted "
                                               r"run: remove it or choose another --out"):
            bundle_io.open_work_dir(out, resume=resume)
    assert os.path.isfile(bundle_io.partial_dir(out))


def test_distributed_validation_scores_every_image(nails_dir):
    """MirroredStrategy over 2 logical CPUs, 5 images, global batch 4: 2 steps, finite loss,
    equal to one device over the same padded images (what Keras averages), unlike the
    evaluation that drops the incomplete batch."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tests",
                                                          "distributed_validation_check.py"),
                             nails_dir, "5"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["steps"] == 2 and report["images"] == 8
    for key in ("loss", "iou_score"):
        assert math.isfinite(report["distributed"][key])
        assert report["distributed"][key] == pytest.approx(report["reference"][key], rel=1e-5)
    assert report["distributed"]["loss"] != pytest.approx(report["dropped"]["loss"], rel=1e-4)


def test_a_read_only_out_is_refused_before_the_data_is_read(read_only_folder, tmp_path,
                                                            capsys):
    out = os.path.join(read_only_folder, "bundle")
    argv = train_args(out, tmp_path / "no-data-yet", "flat", ["nail"])
    assert cli.run(train_cli.main, train_cli.parse_args, argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --out {}: cannot write into folder {} (Read-only file system): pick " \
        "a writable one".format(out, read_only_folder)


def test_a_live_run_is_refused_for_every_flag_naming_its_pid_and_host(tmp_path, nails_dir,
                                                                       live_pid, capsys):
    """A second train/train.py on the --out of a running training: plain, --resume and
    --overwrite all stop in one line naming the pid and host, offer neither flag again,
    and leave the live run's folder as it was."""
    import socket
    out = str(tmp_path / "b")
    work = bundle_io.open_work_dir(out)
    bundle_io.write_state(work, 1, 0.5)
    _claim(work, live_pid)
    before = sorted(os.listdir(work))
    argv = train_args(out, nails_dir, "flat", ["nail"], size=(64, 64), epochs=1, batch=2)
    for extra in ([], ["--resume"], ["--overwrite"], ["--resume", "--overwrite"]):
        assert cli.run(train_cli.main, train_cli.parse_args, argv + extra) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0, err
        assert "still running (pid {} on {})".format(live_pid, socket.gethostname()) in err
        assert "--resume" not in err and "--overwrite" not in err, err
        assert sorted(os.listdir(work)) == before
    assert bundle_io.read_state(work)["epochs_done"] == 1


def test_a_run_on_another_host_is_refused_naming_the_host(tmp_path):
    out = str(tmp_path / "b")
    work = bundle_io.open_work_dir(out)
    with open(os.path.join(work, names.OWNER_JSON), "w") as handle:
        json.dump({"pid": 4242, "host": "gpu-box-2"}, handle)
    for resume, overwrite in ((False, False), (True, False), (False, True)):
        with pytest.raises(NanosegError, match=r"belongs to a training run on host gpu-box-2 "
                                               r"\(pid 4242\): wait for it"):
            bundle_io.open_work_dir(out, resume=resume, overwrite=overwrite)
    assert os.path.isdir(work)


def test_a_dead_runs_folder_is_resumed_or_overwritten(tmp_path):
    out = str(tmp_path / "b")
    work = bundle_io.open_work_dir(out)
    bundle_io.write_state(work, 2, 0.5)
    _claim(work, _finished_pid())
    assert bundle_io.open_work_dir(out, resume=True) == work
    assert bundle_io.read_state(work)["epochs_done"] == 2
    _claim(work, _finished_pid())
    assert bundle_io.open_work_dir(out, overwrite=True) == work
    assert bundle_io.read_state(work)["epochs_done"] == 0


def _interrupted_run(out, data, size, classes=("nail",)):
    """A dead run's <out>.partial after one epoch, with the resume state train.py records."""
    args = train_cli.parse_args(train_args(out, data, "flat", list(classes), size=size,
                                           epochs=2, batch=2))
    contract = train_cli.make_contract(train_cli.open_datasets(args)[0], args)
    work = bundle_io.open_work_dir(out)
    state = {"epochs_done": 0}
    train_cli.check_resumable(state, contract, args)
    bundle_io.write_state(work, 1, 0.5, callbacks.run_identity(state))
    _claim(work, _finished_pid())
    return work


@pytest.mark.parametrize("change,message", [
    ("data", r"trained with --data {A}, not with --data {B}: resume with --data {A} or"),
    ("size", r"trained at --size 96 96, not 64 64: resume with --size 96 96 or"),
    ("classes", r"trained with --classes nail, not with --classes nails: resume with "
                r"--classes nail or"),
])
def test_resume_refuses_other_data_size_or_classes_naming_the_flag(tmp_path, nails_dir,
                                                                   change, message):
    from tests.train_helpers import make_tutorial_layout
    other = str(tmp_path / "other")
    make_tutorial_layout(nails_dir, other)
    out = str(tmp_path / "b")
    work = _interrupted_run(out, nails_dir, (96, 96))
    data = other if change == "data" else nails_dir
    size = (64, 64) if change == "size" else (96, 96)
    classes = ["nails"] if change == "classes" else ["nail"]
    argv = train_args(out, data, "flat", classes, size=size, epochs=2, batch=2,
                      extra_args=["--resume"])
    pattern = message.format(A=re.escape(os.path.abspath(nails_dir)),
                             B=re.escape(os.path.abspath(other)))
    with pytest.raises(NanosegError, match="^--resume: the checkpoint was " + pattern):
        train_cli.train(train_cli.parse_args(argv))
    assert bundle_io.read_state(work)["epochs_done"] == 1


def test_a_disk_without_room_for_the_run_is_one_line_before_the_first_epoch(
        nearly_full_folder, nails_dir, capsys):
    """A real training on a disk with 64 KiB free: exit status 2 and one line with the room
    needed, before any checkpoint (h5py meets a full disk with a traceback and can crash
    the process at exit); no bundle is published."""
    out = os.path.join(nearly_full_folder, "bundle")
    argv = train_args(out, nails_dir, "flat", ["nail"], size=(64, 64), epochs=1, batch=2)
    assert cli.run(train_cli.main, train_cli.parse_args, argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines()
           if not line.startswith("Segmentation Models: using")]  # its import banner
    assert len(err) == 1, err
    assert re.match(r"error: --out {}: 0\.\d MB free on its disk, and the run writes about "
                    r"\d+ MB \(checkpoints and the bundle's model files\): free space there "
                    r"or pick another --out$".format(re.escape(out)), err[0]), err
    assert not os.path.exists(out)
    assert not os.listdir(os.path.join(out + ".partial", "checkpoints"))
