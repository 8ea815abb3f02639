"""train/train.py's flags: the parser and the one-line checks of what was given."""
import sys

from nanoseg import cli
from nanoseg.datasets import LAYOUT_NAMES, layout_row, layouts_with
from nanoseg.errors import NanosegError
from nanoseg.normalization import NORMALIZATION_CHOICES
from train.distribute import STRATEGIES
from train.model import DEFAULT_BACKBONE, DEFAULT_SIZE  # no TensorFlow on import

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

