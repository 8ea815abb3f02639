"""The bundle's files from the trained model: model.h5, evaluation, curves, contract.json."""
import os
import sys

from nanoseg import bundle as names


def _versions():
    """Library versions recorded in the contract (what produced this model)."""
    import cv2
    import numpy
    import tensorflow as tf
    from train import keras_env
    sm = keras_env.import_segmentation_models()
    try:
        import keras
        keras_version = keras.__version__
    except ImportError:
        keras_version = None
    return {"tensorflow": tf.__version__, "keras": keras_version,
            "segmentation_models": sm.__version__, "numpy": numpy.__version__,
            "opencv": cv2.__version__, "python": sys.version.split()[0]}


def keras_val_iou(log_path):
    """val_iou_score of the epoch with the lowest val_loss (the checkpointed one)."""
    from train.plots import read_log
    if not os.path.isfile(log_path):
        return None
    log = read_log(log_path)
    losses, ious = log.get("val_loss", []), log.get("val_iou_score", [])
    if not losses or len(ious) != len(losses):
        return None
    best = min(range(len(losses)), key=lambda i: losses[i])
    return ious[best]


def write_bundle(model, args, contract, train_set, val_set, work_dir, strategy_name,
                 replicas):
    """model.h5, weights.h5, model.json, evaluation, curves and finally contract.json."""
    from nanoseg.bundle import CONTRACT_JSON
    from nanoseg.contract import save_contract
    from nanoseg.files import sha256_file
    from nanoseg.evaluation import evaluate
    from train.evaluate import save_report
    from train.model import compile_model, predict_probabilities, save_model_files
    from nanoseg.evaluation import iterate_validation
    from train.plots import plot_curves
    from nanoseg.datasets import DatasetRecipe, write_split_csv
    from nanoseg.datasets.recipe import SPLIT_PATHS_DATASET
    compile_model(model, contract, args.lr)      # so model.h5 records loss and metrics
    save_model_files(model, work_dir)
    write_split_csv(os.path.join(work_dir, names.SPLIT_CSV),
                    {"train": train_set.samples, "val": val_set.samples}, root=train_set.root)
    report = evaluate(lambda x: predict_probabilities(model, x), contract,
                      iterate_validation(val_set, contract), args.batch)
    report.update({"backend": "keras", "split": "val", "dataset": val_set.root,
                   "layout": val_set.layout})
    save_report(report, work_dir)
    log_path = os.path.join(work_dir, names.TRAIN_LOG)
    if os.path.isfile(log_path):
        plot_curves(log_path, os.path.join(work_dir, names.CURVES_PNG))
    contract.versions = _versions()
    contract.artifacts = {name: {"sha256": sha256_file(os.path.join(work_dir, name))}
                          for name in (names.MODEL_H5, names.WEIGHTS_H5)}
    contract.extra = {
        "train_args": dict((k, v) for k, v in vars(args).items()),
        "precision": "mixed_float16" if args.mixed_precision else "float32",
        "saved_precision": "float32",
        "strategy": strategy_name, "replicas": replicas,
        "keras_val_iou": keras_val_iou(log_path),
        "val_miou": report["miou"],
    }
    if getattr(args, "init_from", None):
        from train.init_from import record, start_contract
        record(contract, args.init_from, start_contract(args.init_from))
    DatasetRecipe(root=os.path.abspath(args.data), layout=args.layout, classes_arg=args.classes,
                  images_dir=args.images_dir, masks_dir=args.masks_dir,
                  mask_invert=bool(args.mask_invert), val_fraction=args.val_fraction,
                  seed=args.seed, train_images=len(train_set), val_images=len(val_set),
                  split_csv=names.SPLIT_CSV, split_paths=SPLIT_PATHS_DATASET).store(contract)
    save_contract(contract, os.path.join(work_dir, CONTRACT_JSON))

