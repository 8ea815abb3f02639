"""``train/train.py --init-from BUNDLE``: fine-tune a bundle's model on new data.

The run starts from the bundle's model.h5 (any architecture: a train/train.py Unet or an
imported FPN alike) and keeps its contract: input size, classes in label order and
normalization come from the bundle; a flag that asks for something else is refused in one
line naming the difference, because the weights only mean something for the inputs and
labels they were trained on. The new bundle records where it started
(``contract.extra["init_from"]``).
"""
import logging
import os

from nanoseg.bundle import MODEL_H5, Bundle
from nanoseg.errors import NanosegError
from nanoseg.files import sha256_file

LOG = logging.getLogger(__name__)
KEY = "init_from"
# Flags whose value, when not given, comes from the --init-from bundle.
INHERITED = ("--size", "--normalization", "--classes", "--backbone")


def given_flags(argv):
    """The INHERITED flags present on the command line (``--size=...`` forms included), as
    a sorted list (it is recorded with the run's arguments, in JSON)."""
    tokens = [str(token) for token in argv]
    return sorted(set(flag for flag in INHERITED for token in tokens
                      if token == flag or token.startswith(flag + "=")))


def start_contract(path):
    """The contract of the --init-from bundle (one line when it is not a bundle)."""
    bundle = Bundle(path)
    bundle.require(MODEL_H5, "--init-from needs a bundle with its Keras model (train/train.py "
                             "or convert/import_model.py write it)")
    return bundle.contract()


def fill_args(args, contract, layout_takes_ids):
    """Take the size, classes and backbone the user did not give from the bundle."""
    given = getattr(args, "given_flags", ())
    if "--size" not in given:
        args.size = [contract.height, contract.width]
    if "--backbone" not in given and contract.backbone:
        args.backbone = contract.backbone
    if "--classes" not in given:
        names = contract.class_names[1:]
        args.classes = ["{}={}".format(n, i + 1) for i, n in enumerate(names)] \
            if contract.activation == "softmax" and layout_takes_ids else list(names)


def make_contract(dataset, args, start):
    """The new run's contract: the bundle's, with this data's classes; refused unless equal."""
    from nanoseg.contract import Contract
    from train.backbones import resolve_normalization
    if args.mixed_precision:
        raise NanosegError("--init-from fine-tunes the bundle's float32 model: drop "
                           "--mixed-precision")
    if "--normalization" in getattr(args, "given_flags", ()):
        normalization, order = resolve_normalization(args.normalization,
                                                     start.backbone or args.backbone)
    else:
        normalization, order = start.normalization, start.channel_order
    activation = "sigmoid" if len(dataset.class_names) == 1 else "softmax"
    contract = Contract.create(args.size[0], args.size[1], activation=activation,
                               normalization=normalization, channel_order=order,
                               backbone=start.backbone, threshold=start.threshold,
                               **dataset.contract_classes())
    check_same(start, contract, args.init_from)
    return contract


def check_same(start, contract, path):
    """One line naming the first difference between the bundle's contract and this run's."""
    where = "--init-from {}".format(path)
    if start.size != contract.size:
        raise NanosegError("{} takes {}x{} inputs but --size is {} {}: drop --size".format(
            where, start.height, start.width, contract.height, contract.width))
    if [n.lower() for n in start.class_names] != [n.lower() for n in contract.class_names]:
        raise NanosegError("{} predicts {} but the data gives {}: pass --classes {} (the "
                           "bundle's, in its order) or data with those classes".format(
                               where, ", ".join(start.class_names),
                               ", ".join(contract.class_names),
                               " ".join(start.class_names[1:])))
    if start.normalization != contract.normalization or \
            start.channel_order != contract.channel_order:
        raise NanosegError("{} was trained with normalization {} ({}) but this run asks {} "
                           "({}): drop --normalization".format(
                               where, start.normalization.name, start.channel_order,
                               contract.normalization.name, contract.channel_order))
    start.check_compatible(contract, "--init-from bundle")   # anything else, by name


def initial_model(path):
    """The bundle's Keras model (float32, trainable as saved)."""
    from train.model import load_model_for_inference
    model = load_model_for_inference(os.path.join(Bundle(path).root, MODEL_H5))
    LOG.info("starting from %s (%d weights)", os.path.join(path, MODEL_H5),
             len(model.weights))
    return model


def model_with_weights(path, weights_path):
    """The bundle's architecture holding a checkpoint's weights (the best epoch's)."""
    model = initial_model(path)
    status = model.load_weights(weights_path)
    if status is not None and hasattr(status, "expect_partial"):
        status.expect_partial()
    return model


def record(contract, path, start):
    """Where the new bundle started: the bundle, its model's sha256, its validation mIoU."""
    root = Bundle(path).root
    contract.extra[KEY] = {"bundle": root,
                           "model_sha256": sha256_file(os.path.join(root, MODEL_H5)),
                           "val_miou": start.extra.get("val_miou")}
