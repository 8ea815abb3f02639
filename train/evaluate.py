"""Evaluate a bundle: mIoU, per-class IoU (ignore excluded), pixel accuracy, a bar chart.

    python3 train/evaluate.py --bundle runs/nails --data ../shared/data/nails --layout flat

The scoring itself is ``nanoseg.evaluation`` (TensorFlow-free, the same on every backend);
this file adds the Keras model, the report files and the command line.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import json
import logging
import os
import sys

from nanoseg import cli
from nanoseg.bundle import EVALUATION_JSON, EVALUATION_PNG, MODEL_H5, Bundle
from nanoseg.files import check_writable, write_text_atomic
from nanoseg.errors import NanosegError
from nanoseg.evaluation import add_dataset_args, dataset_for, evaluate, iterate_validation
from nanoseg.metrics import format_report

LOG = logging.getLogger(__name__)


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
    if not args.no_save:  # before the evaluation, not after it
        check_writable(args.bundle, "--bundle", folder=True)
    report = evaluate_bundle(args.bundle, args.data, args.layout, args.split, args.classes,
                             args.batch, save=not args.no_save)
    print(format_report(report))
    if not args.no_save:
        print("saved {} and {} in {}".format(EVALUATION_JSON, EVALUATION_PNG,
                                             os.path.abspath(args.bundle)))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
