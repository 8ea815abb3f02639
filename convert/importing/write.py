"""The bundle of an imported model: model.h5, weights.h5, model.json, contract.json and,
with masks, split.csv + evaluation.json; written beside ``--out`` and published by rename.
"""
import logging
import os
import shutil
import tempfile

from nanoseg import bundle as names
from nanoseg.contract import Contract, save_contract
from nanoseg.errors import NanosegError
from nanoseg.files import sha256_file
from nanoseg.normalization import BACKBONE

from convert.importing.images import IMPORTED

LOG = logging.getLogger(__name__)


def resolve_normalization(name, backbone, layer_names):
    """(Normalization, channel order, where it came from) for ``--normalization``.

    ``backbone`` follows ``--backbone``, else the encoder family recognised by its layer
    names; neither known is a one-line question. Always a WARNING: the model cannot tell
    how its inputs were normalized, and a wrong guess silently spoils every prediction.
    """
    from train.backbones import (backbone_of_mode, guess_family, normalization_for,
                                 resolve_normalization as named)
    if name != BACKBONE:
        normalization, order = named(name, backbone)
        source = "--normalization {}".format(name)
    elif backbone:
        normalization, order = normalization_for(backbone)
        source = "backbone {}".format(backbone)
    else:
        guess = guess_family(layer_names)
        if guess is None:
            raise NanosegError("cannot tell the model's encoder from its layers: pass --backbone "
                               "NAME (its normalization becomes the default) or "
                               "--normalization imagenet|scale, as it was trained")
        normalization, order = normalization_for(backbone_of_mode(guess[1]))
        source = "the {} encoder recognised in its layers".format(guess[0])
    LOG.warning("normalization %s (%s, %s input): it must be the one the model was trained "
                "with, or every prediction is off; pass --normalization to change it",
                normalization.name, source, order)
    return normalization, order, source


def check_out(out, overwrite):
    """An --out that is absent, empty, or replaced with --overwrite."""
    if os.path.isfile(out):
        raise NanosegError("--out {} is a file: choose a folder".format(out))
    if os.path.isdir(out) and os.listdir(out) and not overwrite:
        raise NanosegError("--out {} exists and is not empty: choose another --out or pass "
                           "--overwrite".format(out))


def make_contract(size, activation, foreground, normalization, channel_order, backbone,
                  imported):
    contract = Contract.create(size[0], size[1], foreground, activation, normalization,
                               channel_order=channel_order, backbone=backbone)
    contract.extra = {IMPORTED: imported, "precision": "float32",
                      "saved_precision": "float32"}
    return contract


def labelled_dataset(images, masks, contract):
    """The --images/--masks pairs as a flat dataset in the contract's label space."""
    from nanoseg.datasets import open_dataset
    classes = contract.class_names[1:] if contract.activation == "sigmoid" else \
        ["{}={}".format(name, label) for label, name in enumerate(contract.class_names)
         if label]
    return open_dataset(os.path.dirname(os.path.abspath(images)), "flat", split="all",
                        classes=classes, images_dir=os.path.abspath(images),
                        masks_dir=os.path.abspath(masks)), classes


def write_bundle(out, model, contract, images=None, masks=None):
    """Write everything into a folder beside ``out``, then publish it as ``out``."""
    from train.bundle_io import publish
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    work = tempfile.mkdtemp(prefix=os.path.basename(out) + ".import-", dir=parent)
    try:
        report = _write_files(work, model, contract, images, masks)
        return publish(work, out), report
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)    # never a half bundle beside --out
        raise


def _write_files(work, model, contract, images, masks):
    from nanoseg.datasets import DatasetRecipe, write_split_csv
    from nanoseg.evaluation import evaluate, iterate_validation
    from train.evaluate import save_report
    from train.model import predict_probabilities, save_model_files
    save_model_files(model, work)
    report = None
    if masks:
        dataset, classes = labelled_dataset(images, masks, contract)
        write_split_csv(os.path.join(work, names.SPLIT_CSV), {"val": dataset.samples})
        DatasetRecipe(root=dataset.root, layout="flat", classes_arg=classes,
                      images_dir=os.path.abspath(images), masks_dir=os.path.abspath(masks),
                      train_images=0, val_images=len(dataset),
                      split_csv=names.SPLIT_CSV).store(contract)
        report = evaluate(lambda x: predict_probabilities(model, x), contract,
                          iterate_validation(dataset, contract))
        report.update({"backend": "keras", "split": "val", "dataset": dataset.root,
                       "layout": "flat"})
        save_report(report, work)
        contract.extra["val_miou"] = report["miou"]
    contract.artifacts = {name: {"sha256": sha256_file(os.path.join(work, name))}
                          for name in (names.MODEL_H5, names.WEIGHTS_H5)}
    contract.versions = _versions()
    save_contract(contract, os.path.join(work, names.CONTRACT_JSON))
    return report


def _versions():
    """Library versions recorded in the contract (what rebuilt this model)."""
    import sys
    import cv2
    import numpy
    import tensorflow as tf
    return {"tensorflow": tf.__version__, "numpy": numpy.__version__,
            "opencv": cv2.__version__, "python": sys.version.split()[0]}
