"""Train a Unet and write a bundle: the model, its contract, logs, curves and evaluation.

    python3 train/train.py --data ../shared/data/nails --layout flat --out runs/nails
    python3 train/train.py --data ../shared/data/camvid-mini --layout camvid \
        --classes car road pedestrian --out runs/camvid

The bundle appears only when training finished (see train/bundle_io.py); an interrupted run
leaves ``<out>.partial`` which ``--resume`` continues with the epoch count carried on.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import logging
import os
import sys
import warnings

from nanoseg import cli
from nanoseg import bundle as names
from nanoseg.datasets import LAYOUT_NAMES, layout_row, layouts_with
from nanoseg.errors import NanosegError
from nanoseg.files import check_writable
from nanoseg.normalization import NORMALIZATION_CHOICES
from train.callbacks import make_callbacks, run_identity
from train.distribute import (STRATEGIES, check_validation_size, cluster_info, distributed_data,
                              make_strategy, steps_for, validation_input)
from train.model import DEFAULT_BACKBONE, DEFAULT_SIZE  # no TensorFlow on import

LOG = logging.getLogger(__name__)

# Data flags that only some layouts take: (flag, the capability of nanoseg.datasets.LAYOUTS
# that allows it, why the other layouts refuse it; {layouts} are those that take it).
LAYOUT_FLAGS = (
    ("--mask-invert", "binary_masks", "is for binary masks ({layouts}); {layout} masks hold "
                                      "class ids"),
    ("--split-csv", "seeded_split", "is for {layouts} datasets without a split; {layout} "
                                    "datasets come with train/val lists"),
    ("--images-dir", "folders", "names the images folder of a {layouts} dataset; {layout} "
                                "datasets find their images themselves"),
    ("--masks-dir", "folders", "names the masks folder of a {layouts} dataset; {layout} "
                               "datasets find their masks themselves"),
)


# -- the CLI ------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = cli.make_parser("Train a segmentation_models Unet and write a model bundle "
                             "(model.h5, contract.json, logs, curves, evaluation).")
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, help="dataset root folder (or CSV for csv)")
    data.add_argument("--layout", required=True, choices=LAYOUT_NAMES,
                      help="dataset layout (see nanoseg/datasets/layouts.py)")
    data.add_argument("--classes", nargs="+", default=None,
                      help="classes to learn, in label order (flat binary masks: one name "
                           "or name=id pairs; camvid/voc: class names). Default: all")
    data.add_argument("--images-dir", default=None, help="flat layout: images sub-folder")
    data.add_argument("--masks-dir", default=None, help="flat layout: masks sub-folder")
    data.add_argument("--mask-invert", action="store_true",
                      help="binary masks whose class is the dark value (0 = object, "
                           "membrane-style); recorded in the contract")
    data.add_argument("--val-fraction", type=float, default=0.2,
                      help="validation share for datasets without a split (flat/csv)")
    data.add_argument("--split-csv", default=None, metavar="FILE",
                      help="flat/csv without a split: read the train/val split from FILE "
                           "(e.g. an earlier bundle's split.csv), or write the seeded split "
                           "there if FILE does not exist")
    data.add_argument("--normalization", default="backbone",
                      choices=NORMALIZATION_CHOICES,
                      help="input normalization recorded in the contract")
    data.add_argument("--augment", default="default", choices=["default", "none"],
                      help="training augmentation recipe (train/augment.py)")
    model = parser.add_argument_group("model")
    model.add_argument("--backbone", default=DEFAULT_BACKBONE,
                       help="any segmentation_models backbone")
    model.add_argument("--size", nargs=2, type=int, default=list(DEFAULT_SIZE),
                       metavar=("H", "W"), help="model input size (multiples of 32)")
    model.add_argument("--encoder-weights", default="imagenet",
                       help="'imagenet', 'none', or a path to the backbone's no-top .h5")
    model.add_argument("--encoder-freeze", action="store_true",
                       help="do not train the encoder (use with pretrained weights)")
    model.add_argument("--mixed-precision", action="store_true",
                       help="mixed_float16 compute with a float32 output and loss scaling")
    fit = parser.add_argument_group("training")
    fit.add_argument("--batch", type=int, default=8, help="images per step per replica")
    fit.add_argument("--epochs", type=int, default=40, help="total epochs (also on --resume)")
    fit.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    fit.add_argument("--bn-momentum", type=float, default=0.99,
                     help="BatchNorm running-statistics momentum; 0.9 for short runs from "
                          "scratch (inference uses the running statistics)")
    fit.add_argument("--patience", type=int, default=8,
                     help="early-stopping patience in epochs (LR halves after half of it)")
    fit.add_argument("--seed", type=int, default=0, help="split, shuffle and weight seed")
    fit.add_argument("--strategy", default="default", choices=STRATEGIES,
                     help="tf.distribute: one device, all local GPUs, or workers from "
                          "TF_CONFIG")
    fit.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                     help="Keras fit verbosity (1 = progress bars, 2 = one line per epoch)")
    out = parser.add_argument_group("output")
    out.add_argument("--out", required=True, help="bundle folder to write")
    out.add_argument("--resume", action="store_true",
                     help="continue <out>.partial (or the bundle's checkpoints) up to --epochs")
    out.add_argument("--overwrite", action="store_true",
                     help="replace an existing --out (or an interrupted <out>.partial)")
    out.add_argument("--init-from", default=None, metavar="BUNDLE",
                     help="start from this bundle's model (fine-tuning); its size, classes "
                          "and normalization are this run's (train/init_from.py)")
    cli.add_logging_args(parser)
    args = parser.parse_args(argv)
    from train.init_from import given_flags
    args.given_flags = given_flags(sys.argv[1:] if argv is None else list(argv))
    return args


def check_args(args):
    """One-line errors for numbers that cannot work, before anything heavy starts."""
    if args.epochs < 1:
        raise NanosegError("--epochs must be at least 1, got {}".format(args.epochs))
    if args.batch < 1:
        raise NanosegError("--batch must be at least 1, got {}".format(args.batch))
    if not args.lr > 0:
        raise NanosegError("--lr must be positive, got {}".format(args.lr))
    if args.patience < 1:
        raise NanosegError("--patience must be at least 1, got {}".format(args.patience))
    if not 0.0 < args.val_fraction < 1.0:
        raise NanosegError("--val-fraction must be between 0 and 1, got {}".format(
            args.val_fraction))
    if not 0.0 < args.bn_momentum < 1.0:
        raise NanosegError("--bn-momentum must be in (0, 1), got {}".format(args.bn_momentum))
    check_layout_flags(args)
    if args.resume and args.strategy == "multiworker":
        # Only the chief holds <out>.partial: the other workers would start from fresh
        # weights at epoch 0 while the chief resumes, and the collectives would hang.
        raise NanosegError("--resume is not supported with --strategy multiworker (only the "
                           "chief has the checkpoint): rerun without --resume, or resume on "
                           "one machine with --strategy mirrored")


def check_layout_flags(args):
    """A data flag the layout does not take is an error, not silently ignored."""
    row = layout_row(args.layout)
    for flag, capability, why in LAYOUT_FLAGS:
        if getattr(args, flag[2:].replace("-", "_")) and not getattr(row, capability):
            raise NanosegError("{} {}".format(flag, why.format(
                layouts="/".join(layouts_with(capability)), layout=args.layout)))


def main(args):
    cli.setup_logging(args.log_level)
    if args.log_level != "DEBUG":   # tf.distribute logs every all-reduce at INFO
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from train import keras_env
    keras_env.prepare()
    bundle = train(args)
    print("bundle: {}".format(bundle))
    return 0


# -- the run ------------------------------------------------------------------------------
def open_datasets(args):
    """(train, val) SegmentationDatasets with the same classes and a reproducible split."""
    from nanoseg.datasets import open_dataset
    common = dict(classes=args.classes, images_dir=args.images_dir, masks_dir=args.masks_dir,
                  val_fraction=args.val_fraction, seed=args.seed, split_csv=args.split_csv,
                  mask_invert=args.mask_invert)
    return (open_dataset(args.data, args.layout, split="train", **common),
            open_dataset(args.data, args.layout, split="val", **common))


def log_binary_class(dataset, mask_invert):
    """Say which mask value became the class and how much of the pictures it covers.

    A class covering most pixels usually means the masks mark the object dark (or the
    background bright): --mask-invert flips that, and the log says so before training.
    """
    from nanoseg.datasets import binary_class_summary
    text, share = binary_class_summary(dataset)
    if text is None:
        return
    LOG.info("binary masks: %s", text)
    if share > 0.5:
        LOG.warning("class %r covers %.0f%% of the pixels: if the masks mark it with the %s "
                    "value, %s --mask-invert", dataset.class_names[0], 100 * share,
                    "bright" if mask_invert else "dark", "drop" if mask_invert else "pass")


def make_contract(dataset, args):
    """The contract: input size, normalization of the backbone, classes of the dataset."""
    from nanoseg.contract import Contract
    from train.backbones import resolve_normalization
    from train.model import check_backbone, check_size, resolve_encoder_weights
    check_backbone(args.backbone)
    check_size(args.size)
    resolve_encoder_weights(args.encoder_weights)
    normalization, channel_order = resolve_normalization(args.normalization, args.backbone)
    activation = "sigmoid" if len(dataset.class_names) == 1 else "softmax"
    return Contract.create(args.size[0], args.size[1], activation=activation,
                           normalization=normalization, channel_order=channel_order,
                           backbone=args.backbone, **dataset.contract_classes())


def train(args, extra_callbacks=()):
    """Train per ``args`` (the CLI namespace) and return the published bundle path.

    ``extra_callbacks`` run after the built-in ones (e.g. a test that simulates a crash).
    """
    check_args(args)
    check_writable(args.out, "--out", folder=True)  # <out>.partial and <out> go beside it
    from train import bundle_io, init_from
    start = None
    if getattr(args, "init_from", None):
        start = init_from.start_contract(args.init_from)
        init_from.fill_args(args, start, layout_row(args.layout).folders)
    train_set, val_set = open_datasets(args)
    log_binary_class(train_set, args.mask_invert)
    contract = init_from.make_contract(train_set, args, start) if start else \
        make_contract(train_set, args)
    strategy = make_strategy(args.strategy)
    pipelines, is_chief = cluster_info(strategy)
    # Before any folder is made: a split too small for the batch must not leave a
    # <out>.partial behind that the next run would have to --overwrite.
    steps_for(len(train_set), args.batch * strategy.num_replicas_in_sync, pipelines,
              "training")
    check_validation_size(len(val_set), pipelines)
    if is_chief:
        bundle_io.check_out_dir(args.out, contract, args.overwrite)
        work_dir = bundle_io.open_work_dir(args.out, args.resume, args.overwrite)
    else:
        work_dir = bundle_io.temporary_work_dir()
    state = bundle_io.read_state(work_dir)
    _check_resumable(state, contract, args)
    replicas = strategy.num_replicas_in_sync
    global_batch = args.batch * replicas
    LOG.info("strategy %s: %d replica(s), %d worker(s), global batch %d", args.strategy,
             replicas, pipelines, global_batch)
    _fit(args, strategy, contract, train_set, val_set, work_dir, state, global_batch, pipelines,
         extra_callbacks)
    if not is_chief:     # only the chief writes the bundle
        import shutil
        shutil.rmtree(work_dir, ignore_errors=True)
        return None
    best = _best_float32_model(args, contract, work_dir)
    _write_bundle(best, args, contract, train_set, val_set, work_dir, args.strategy,
                  strategy.num_replicas_in_sync)
    return bundle_io.publish(work_dir, args.out)


def _check_resumable(state, contract, args):
    """A resumed run must train the same model, on the same labels, it checkpointed."""
    saved = state.get("contract")
    data = {"root": os.path.abspath(args.data), "layout": args.layout, "classes": args.classes}
    if saved is None:
        state["contract"] = contract.to_dict()
        state["mask_invert"] = bool(args.mask_invert)
        state["data"] = data
        return
    _check_resumed_data(state.get("data"), data)
    saved_invert = bool(state.get("mask_invert", False))
    if saved_invert != bool(args.mask_invert):
        raise NanosegError("--resume: the checkpoint was trained {} --mask-invert: resume {} "
                           "it or pass --overwrite".format(
                               "with" if saved_invert else "without",
                               "with" if saved_invert else "without"))
    state["mask_invert"] = saved_invert
    from nanoseg.contract import Contract
    previous = Contract.from_dict(saved, source="the resume state")
    if previous.backbone != contract.backbone:
        raise NanosegError("--resume: the checkpoint is a {} model, --backbone is {}: resume "
                           "with the same arguments or pass --overwrite".format(
                               previous.backbone, contract.backbone))
    if previous.size != contract.size:
        raise NanosegError("--resume: the checkpoint was trained at --size {} {}, not {} {}: "
                           "resume with --size {} {} or pass --overwrite".format(
                               *(previous.size + contract.size + previous.size)))
    if previous.class_names != contract.class_names:
        raise NanosegError("--resume: the checkpoint learned the classes {}, not {}: resume "
                           "with --classes {} or pass --overwrite".format(
                               previous.class_names[1:], contract.class_names[1:],
                               " ".join(_flag_values(state.get("data"), "classes",
                                                     previous.class_names[1:]))))
    previous.check_compatible(contract, "resumed run")
    if state["epochs_done"] >= args.epochs:
        LOG.warning("--resume: %d epochs are already done and --epochs is %d: no training, "
                    "the bundle is rewritten from the checkpoints", state["epochs_done"],
                    args.epochs)


def _check_resumed_data(saved, data):
    """The same dataset as the checkpoint (states written before this was recorded pass)."""
    if not saved:
        return
    for key, flag in (("root", "--data"), ("layout", "--layout"), ("classes", "--classes")):
        if saved.get(key) != data[key]:
            raise NanosegError("--resume: the checkpoint was trained {}, not {}: resume {} or "
                               "pass --overwrite to start over".format(
                                   _shown(flag, saved.get(key)), _shown(flag, data[key]),
                                   _shown(flag, saved.get(key))))


def _shown(flag, value):
    """A flag as typed on the command line ("with --data /x", "without --classes")."""
    if value is None:
        return "without " + flag
    return "with {} {}".format(flag, " ".join(str(v) for v in value)
                               if isinstance(value, list) else value)


def _flag_values(saved, key, default):
    values = (saved or {}).get(key)
    return [str(v) for v in values] if values else [str(v) for v in default]


def _fit(args, strategy, contract, train_set, val_set, work_dir, state, global_batch,
         pipelines, extra_callbacks):
    """Build (or restore) the model inside the strategy and run Keras fit."""
    import tensorflow as tf
    from train import bundle_io
    from train.model import build_model, compile_model
    tf.keras.utils.set_random_seed(args.seed)
    with strategy.scope():
        if getattr(args, "init_from", None):
            from train.init_from import initial_model
            from train.model import set_batchnorm_momentum
            model = initial_model(args.init_from)
            set_batchnorm_momentum(model, args.bn_momentum)
        else:
            model = build_model(args.backbone, contract, args.encoder_weights,
                                args.encoder_freeze, args.mixed_precision, args.bn_momentum)
        compile_model(model, contract, args.lr)
    if state["epochs_done"]:
        model.load_weights(bundle_io.checkpoint_path(work_dir, state["last_weights"]))\
            .expect_partial()
        LOG.info("resumed after epoch %d", state["epochs_done"])
    bundle_io.write_state(work_dir, state["epochs_done"], state.get("best"),
                          dict(run_identity(state), counters=state.get("counters", {})))
    callbacks = make_callbacks(work_dir, state, args.resume, args.patience, args.verbose)
    if state["epochs_done"] < args.epochs:
        validation_data, validation_steps = validation_input(
            strategy, val_set, contract, global_batch, pipelines, args.seed)
        try:
            model.fit(
                distributed_data(strategy, train_set, contract, global_batch,
                                 None if args.augment == "none" else args.augment, True,
                                 args.seed),
                steps_per_epoch=steps_for(len(train_set), global_batch, pipelines,
                                          "training"),
                validation_data=validation_data, validation_steps=validation_steps,
                epochs=args.epochs, initial_epoch=state["epochs_done"],
                callbacks=callbacks + list(extra_callbacks), verbose=args.verbose)
        except tf.errors.OpError as exc:
            raise_user_error_from(exc)
    return model


def raise_user_error_from(exc):
    """Re-raise a NanosegError that a reader raised inside tf.data, as its one line.

    Images are decoded lazily inside ``tf.numpy_function``, so a corrupt image or a mask with
    foreign ids surfaces as a TensorFlow OpError holding the reader's message and a Python
    traceback. The epochs done so far stay in ``<out>.partial``: ``--resume`` continues
    once the file is fixed. Other OpErrors (out of memory, ...) keep their traceback.
    """
    from train.pipeline import nanoseg_error_from
    error = nanoseg_error_from(exc)
    if error is None:
        raise exc
    raise NanosegError("{} (training stopped; fix or remove the file, then rerun with "
                       "--resume)".format(error)) from None



def _best_float32_model(args, contract, work_dir):
    """A float32 model outside any strategy holding the best checkpoint's weights.

    Read from the checkpoint files (not from the distributed model), so no collective op
    runs after training and a mixed-precision run still yields float32 layers only.
    """
    from train import bundle_io
    from train.model import float32_copy_from_file
    best = bundle_io.checkpoint_path(work_dir, names.BEST_WEIGHTS)
    if not os.path.isfile(best):
        LOG.warning("no best checkpoint in %s: using the last epoch's weights", work_dir)
        best = bundle_io.checkpoint_path(work_dir, names.LAST_WEIGHTS)
    if getattr(args, "init_from", None):
        from train.init_from import model_with_weights
        return model_with_weights(args.init_from, best)
    return float32_copy_from_file(best, args.backbone, contract, args.mixed_precision)


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


def _write_bundle(model, args, contract, train_set, val_set, work_dir, strategy_name,
                  replicas):
    """model.h5, weights.h5, model.json, evaluation, curves and finally contract.json."""
    from nanoseg.bundle import CONTRACT_JSON
    from nanoseg.contract import save_contract
    from nanoseg.files import sha256_file, write_text_atomic
    from nanoseg.evaluation import evaluate
    from train.evaluate import save_report
    from train.model import compile_model, predict_probabilities
    from nanoseg.evaluation import iterate_validation
    from train.plots import plot_curves
    from nanoseg.datasets import DatasetRecipe, write_split_csv
    from nanoseg.datasets.recipe import SPLIT_PATHS_DATASET
    compile_model(model, contract, args.lr)      # so model.h5 records loss and metrics
    with warnings.catch_warnings():   # h5 is deliberate: tf2onnx and TF 2.x all read it
        warnings.filterwarnings("ignore", message=".*HDF5 file.*legacy")
        model.save(os.path.join(work_dir, names.MODEL_H5), include_optimizer=False,
                   save_format="h5")
    model.save_weights(os.path.join(work_dir, names.WEIGHTS_H5))
    write_text_atomic(os.path.join(work_dir, names.MODEL_JSON), model.to_json())
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


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
