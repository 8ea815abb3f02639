"""Evaluate a bundle: mIoU, per-class IoU (ignore excluded), pixel accuracy, a bar chart.

    python3 train/evaluate.py --bundle runs/nails --data ../shared/data/nails --layout flat

:func:`evaluate` takes any ``predict(x_nhwc_batch) -> probabilities`` function, so the ONNX
Runtime and TensorRT evaluations reuse it unchanged; the inputs come from
``iterate_validation`` (the contract's preprocessing, i.e. the edge's) and
the numbers from ``edge.metrics`` (the same code on every backend).
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json
import logging
import os
import sys

import numpy as np

from edge import cli
from edge.bundle import EVALUATION_JSON, EVALUATION_PNG, MODEL_H5, Bundle
from edge.contract import (preprocess_image, probabilities_to_labels, resize_mask,
                           write_text_atomic)
from edge.errors import NanosegError
from edge.metrics import MetricAccumulator, format_report

LOG = logging.getLogger(__name__)
SPLITS = ("train", "val", "test", "all")


def iterate_validation(segmentation_dataset, contract):
    """Yield (x float32 HxWx3, labels uint8 at the model's HxW, nearest) for evaluation.

    x is exactly what the edge feeds the model for this picture; the labels are resized the
    way the contract resizes masks, so predictions and labels compare pixel for pixel.
    TensorFlow-free, so the Jetson (convert/validate.py) scores with the same samples.
    """
    for index in range(len(segmentation_dataset)):
        image, labels = segmentation_dataset.load(index)
        yield preprocess_image(image, contract, "RGB"), resize_mask(labels, contract.size)


def evaluate(predict, contract, samples, batch_size=4):
    """Score ``predict`` on ``samples`` ((x float32 HxWx3, labels uint8 HxW) pairs).

    ``predict`` gets an NHWC float32 batch and returns probabilities (N, H, W, C) from any
    backend; labels follow the contract (threshold / argmax) before they are counted.
    """
    accumulator = MetricAccumulator(contract.class_names, contract.ignore_id)
    batch_x, batch_labels = [], []

    def flush():
        probs = np.asarray(predict(np.stack(batch_x)))
        if probs.shape[0] != len(batch_x):
            raise NanosegError("predict returned {} outputs for a batch of {}: it must keep "
                               "the batch axis".format(probs.shape[0], len(batch_x)))
        for prob, labels in zip(probs, batch_labels):
            accumulator.update(probabilities_to_labels(prob, contract), labels)
        del batch_x[:], batch_labels[:]

    for x, labels in samples:
        batch_x.append(x)
        batch_labels.append(labels)
        if len(batch_x) == batch_size:
            flush()
    if batch_x:
        flush()
    if accumulator.images == 0:
        raise NanosegError("evaluation got no samples: the split is empty")
    return accumulator.result()


def save_report(report, folder):
    """evaluation.json + iou_per_class.png in ``folder`` (both written atomically)."""
    from train.plots import plot_iou_per_class
    json_path = os.path.join(folder, EVALUATION_JSON)
    write_text_atomic(json_path, json.dumps(report, indent=2, sort_keys=True,
                                            allow_nan=False) + "\n")
    title = "IoU per class ({} {}, mIoU {})".format(
        report.get("backend", ""), report.get("split", ""),
        "n/a" if report["miou"] is None else "{:.3f}".format(report["miou"]))
    plot_iou_per_class(report, os.path.join(folder, EVALUATION_PNG), title=title)
    return json_path


def add_dataset_args(parser, title, split_help="which split to score"):
    """--data/--layout/--split/--classes, defaulting to what the bundle was trained on.

    One group for every CLI that reads a bundle's dataset (evaluate, export_onnx, validate);
    :func:`dataset_for` turns the parsed values into a dataset.
    """
    from train.readers import LAYOUTS
    group = parser.add_argument_group(title)
    group.add_argument("--data", default=None,
                       help="dataset root (default: the one the bundle was trained on)")
    group.add_argument("--layout", default=None, choices=LAYOUTS,
                       help="dataset layout (default: the training layout)")
    group.add_argument("--split", default="val", choices=SPLITS, help=split_help)
    group.add_argument("--classes", nargs="+", default=None,
                       help="dataset classes (default: those the bundle was trained with)")
    return group


def dataset_for(contract, data=None, layout=None, split="val", classes=None,
                bundle_dir=None):
    """Open the evaluation data; by default the dataset and split the bundle was trained on.

    On the training dataset (``data`` not given) the split comes from the bundle's
    ``split.csv`` when ``bundle_dir`` has one, so images added to the folder since training
    never move training images into validation; otherwise (other data, a moved bundle) the
    seeded split is rebuilt from the contract's seed and fraction. The classes must be the
    contract's, in the same order, or the IoU would be scored against the wrong labels.
    """
    from train.readers import open_dataset
    info = contract.extra.get("dataset", {})
    on_training_data = not data
    data = data or info.get("root")
    layout = layout or info.get("layout")
    if not data or not layout:
        raise NanosegError("the bundle does not record its dataset: pass --data and --layout")
    classes = classes if classes is not None else info.get("classes_arg")
    same_folders = on_training_data and layout == info.get("layout")
    options = dict(split=split, classes=classes, val_fraction=info.get("val_fraction", 0.2),
                   seed=info.get("seed", 0),
                   mask_invert=bool(info.get("mask_invert")) and layout in ("flat", "csv"),
                   images_dir=info.get("images_dir") if same_folders else None,
                   masks_dir=info.get("masks_dir") if same_folders else None)
    split_csv = _saved_split(bundle_dir, info) if same_folders else None
    dataset = None
    if split_csv and layout in ("flat", "csv"):
        try:
            dataset = open_dataset(data, layout, split_csv=split_csv, **options)
        except NanosegError as exc:     # e.g. the bundle moved: its relative paths broke
            LOG.warning("cannot use the saved split %s (%s): rebuilding the seeded split",
                        split_csv, exc)
    if dataset is None:
        dataset = open_dataset(data, layout, **options)
    if [n.lower() for n in dataset.class_names] != [n.lower() for n in contract.class_names[1:]]:
        raise NanosegError("dataset {} has classes {} but the bundle's model predicts {}: pass "
                           "--classes {}".format(data, dataset.class_names,
                                                 contract.class_names[1:],
                                                 " ".join(contract.class_names[1:])))
    return dataset


def _saved_split(bundle_dir, info):
    """The bundle's split.csv, if training wrote one."""
    if not bundle_dir or not info.get("split_csv"):
        return None
    path = os.path.join(str(bundle_dir), info["split_csv"])
    return path if os.path.isfile(path) else None


def keras_predict(model_path):
    """A ``predict`` function for a bundle's model.h5 (no segmentation_models needed)."""
    from train.model import load_model_for_inference, predict_probabilities
    model = load_model_for_inference(model_path)
    return lambda x: predict_probabilities(model, x)


def evaluate_bundle(bundle_dir, data=None, layout=None, split="val", classes=None,
                    batch_size=4, predict=None, backend="keras", save=True):
    """Evaluate a bundle's Keras model (or ``predict``) and save the report into it."""
    bundle = Bundle(bundle_dir)
    contract = bundle.contract()
    dataset = dataset_for(contract, data, layout, split, classes, bundle_dir=bundle.root)
    if predict is None:     # after the data checks: loading the model takes seconds
        predict = keras_predict(bundle.require(MODEL_H5, "train/train.py writes it"))
    report = evaluate(predict, contract, iterate_validation(dataset, contract), batch_size)
    report.update({"backend": backend, "split": split, "dataset": dataset.root,
                   "layout": dataset.layout})
    if save:
        save_report(report, bundle.root)
    return report


def parse_args(argv=None):
    parser = cli.make_parser("Evaluate a trained bundle: mIoU, per-class IoU (ignore id "
                             "excluded), pixel accuracy and a per-class IoU bar chart, saved "
                             "as evaluation.json + iou_per_class.png in the bundle.")
    cli.add_bundle_arg(parser)
    add_dataset_args(parser, "data (default: the dataset the bundle was trained on)")
    parser.add_argument("--batch", type=int, default=4, help="images per predict call")
    parser.add_argument("--no-save", action="store_true",
                        help="print only; do not write evaluation.json / the PNG")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    from train import keras_env
    keras_env.prepare()
    if args.batch < 1:
        raise NanosegError("--batch must be at least 1, got {}".format(args.batch))
    report = evaluate_bundle(args.bundle, args.data, args.layout, args.split, args.classes,
                             args.batch, save=not args.no_save)
    print(format_report(report))
    if not args.no_save:
        print("saved {} and {} in {}".format(EVALUATION_JSON, EVALUATION_PNG,
                                             os.path.abspath(args.bundle)))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
