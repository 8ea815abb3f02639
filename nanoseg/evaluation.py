"""Scoring a model on a dataset, the same on every backend: inputs, labels, metrics.

:func:`evaluate` takes any ``predict(x_nhwc_batch) -> probabilities`` function (Keras, ONNX
Runtime, TensorRT); the inputs come from :func:`iterate_validation` (the contract's
preprocessing, i.e. the edge's) and the numbers from ``nanoseg.metrics``. TensorFlow-free and
Python 3.6, so the Jetson (convert/validate.py) scores with the same samples.
"""
import logging

import numpy as np

from nanoseg.datasets import LAYOUT_NAMES, SPLITS, DatasetRecipe
from nanoseg.preprocess import preprocess_image, probabilities_to_labels, resize_mask
from nanoseg.errors import NanosegError
from nanoseg.metrics import MetricAccumulator

LOG = logging.getLogger(__name__)


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



def add_dataset_args(parser, title, split_help="which split to score"):
    """--data/--layout/--split/--classes, defaulting to what the bundle was trained on.

    One group for every CLI that reads a bundle's dataset (evaluate, export_onnx, validate);
    :func:`dataset_for` turns the parsed values into a dataset.
    """
    group = parser.add_argument_group(title)
    group.add_argument("--data", default=None,
                       help="dataset root (default: the one the bundle was trained on)")
    group.add_argument("--layout", default=None, choices=LAYOUT_NAMES,
                       help="dataset layout (default: the training layout)")
    group.add_argument("--split", default="val", choices=SPLITS, help=split_help)
    group.add_argument("--classes", nargs="+", default=None,
                       help="dataset classes (default: those the bundle was trained with)")
    return group



def dataset_for(contract, data=None, layout=None, split="val", classes=None,
                bundle_dir=None):
    """Open the evaluation data; by default the dataset and split the bundle was trained on.

    The contract's :class:`~nanoseg.datasets.DatasetRecipe` opens it (the split saved in
    ``bundle_dir``'s split.csv on the training data, the seeded split otherwise). The classes
    must be the contract's, in the same order, or the IoU would be scored against the wrong
    labels.
    """
    recipe = DatasetRecipe.of(contract)
    dataset = recipe.open(split, data, layout, classes, bundle_dir)
    if [n.lower() for n in dataset.class_names] != [n.lower() for n in contract.class_names[1:]]:
        raise NanosegError("dataset {} has classes {} but the bundle's model predicts {}: pass "
                           "--classes {}".format(data or recipe.root, dataset.class_names,
                                                 contract.class_names[1:],
                                                 " ".join(contract.class_names[1:])))
    return dataset


