"""Make a nanoseg bundle from a Keras segmentation model trained elsewhere.

    python3 convert/import_model.py --h5 model.h5 --classes nail --out bundles/nails
    python3 convert/import_model.py --weights best.h5 --arch unet --backbone efficientnetb3 \\
        --activation sigmoid --size 384 384 --classes nail --out bundles/nails
    python3 convert/import_model.py --json model.json --weights best.h5 \\
        --classes car road background --images data/val/images --masks data/val/masks \\
        --out bundles/street

The model says what it knows (input size, output channels, its last activation); the flags
say the rest (class names in output-channel order, normalization, the size of a size-free
model). The bundle then goes through the usual chain: convert/export_onnx.py, validate.py,
build_engine.py, edge/run_camera.py, nanoseg.load().
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import logging
import os
import sys

from nanoseg import cli
from nanoseg.errors import NanosegError
from nanoseg.normalization import NORMALIZATION_CHOICES
from nanoseg.contract import ACTIVATIONS
from convert.importing.load import ARCHITECTURES
from train import keras_env

LOG = logging.getLogger(__name__)


def parse_args(argv=None):
    parser = cli.make_parser("Make a nanoseg bundle from a segmentation_models Keras model "
                             "(full .h5, weights + architecture flags, or model.json + "
                             "weights).")
    source = parser.add_argument_group("the model (one of: --h5; --weights with --arch; "
                                       "--json with --weights)")
    source.add_argument("--h5", default=None, help="a full model saved with model.save()")
    source.add_argument("--weights", default=None,
                        help="weights saved with model.save_weights()")
    source.add_argument("--json", default=None, help="the architecture from model.to_json()")
    source.add_argument("--arch", default=None, choices=sorted(ARCHITECTURES),
                        help="with --weights alone: the segmentation_models architecture")
    source.add_argument("--backbone", default=None,
                        help="the encoder (needed with --arch; otherwise it only sets the "
                             "default normalization, guessed from the layers without it)")
    source.add_argument("--activation", default=None, choices=ACTIVATIONS,
                        help="the last activation (needed with --arch; otherwise read from "
                             "the model, and appended when it outputs raw scores)")
    contract = parser.add_argument_group("what the model cannot say")
    contract.add_argument("--classes", nargs="+", required=True,
                          help="class names in output-channel order (sigmoid: the one class; "
                               "softmax: every channel, one named background)")
    contract.add_argument("--normalization", default="backbone",
                          choices=NORMALIZATION_CHOICES,
                          help="the input normalization it was trained with (backbone: "
                               "segmentation_models' get_preprocessing of the encoder)")
    contract.add_argument("--size", nargs=2, type=int, default=None, metavar=("H", "W"),
                          help="input size (required with --arch and for size-free models)")
    data = parser.add_argument_group("golden images")
    data.add_argument("--images", default=None,
                      help="a folder of pictures like the camera's (export's golden images)")
    data.add_argument("--masks", default=None,
                      help="their masks, paired by name (binary for sigmoid, label ids "
                           "1..N in --classes order for softmax): gives the bundle's mIoU")
    out = parser.add_argument_group("output")
    out.add_argument("--out", required=True, help="bundle folder to write")
    out.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def check_args(args):
    """Which of the three forms the flags name; anything else is one line."""
    if args.h5 and (args.weights or args.json or args.arch):
        raise NanosegError("--h5 is a whole model: drop --weights, --json and --arch")
    if args.json and not args.weights:
        raise NanosegError("--json needs --weights (the file model.save_weights() wrote)")
    if args.weights and not args.json:
        missing = [flag for flag, value in (("--arch", args.arch), ("--backbone", args.backbone),
                                            ("--activation", args.activation),
                                            ("--size", args.size)) if not value]
        if missing:
            raise NanosegError("--weights alone needs the architecture: pass {}".format(
                " ".join(missing)))
    if not (args.h5 or args.weights):
        raise NanosegError("no model given: pass --h5 FILE, --weights FILE with --arch, or "
                           "--json FILE --weights FILE")
    if args.masks and not args.images:
        raise NanosegError("--masks needs --images (the pictures they label)")
    for flag, folder in (("--images", args.images), ("--masks", args.masks)):
        if folder and not os.path.isdir(folder):
            raise NanosegError("{} {} is not a folder".format(flag, folder))
    if args.size and (args.size[0] <= 0 or args.size[1] <= 0):
        raise NanosegError("--size must be positive, got {} {}".format(*args.size))


def load_model(args):
    from convert.importing import load
    if args.h5:
        return load.load_full_h5(args.h5), "h5", args.h5
    if args.json:
        return load.load_json(args.json, args.weights), "json", args.json
    channels = 1 if args.activation == "sigmoid" else len(args.classes)
    model = load.build_from_flags(args.arch, args.backbone, args.activation, channels,
                                  args.size, args.weights)
    return model, "weights", args.weights


def import_model(args):
    """Load, check against the flags, rebuild for export, write the bundle; -> (path, report)."""
    from convert.importing import shape, write
    from nanoseg.files import sha256_file
    check_args(args)
    write.check_out(os.path.abspath(args.out), args.overwrite)
    model, form, path = load_model(args)
    facts = shape.read_facts(model)
    size = shape.check_size(facts, args.size)
    activation, add_activation = shape.check_activation(facts, args.activation)
    foreground, order = shape.label_order(args.classes, activation, facts.channels)
    normalization, channel_order, source = write.resolve_normalization(
        args.normalization, args.backbone, facts.layer_names)
    final = shape.exported_model(model, size, add_activation, activation, order)
    shape.check_runs(final, size)
    imported = {"form": form, "file": os.path.abspath(path), "sha256": sha256_file(path),
                "arch": args.arch, "channels_in_order": list(args.classes),
                "activation_appended": add_activation, "normalization_from": source,
                "images": os.path.abspath(args.images) if args.images else None}
    contract = write.make_contract(size, activation, foreground, normalization, channel_order,
                                   args.backbone, imported)
    return write.write_bundle(args.out, final, contract, args.images, args.masks)


def main(args):
    cli.setup_logging(args.log_level)
    keras_env.prepare()
    bundle, report = import_model(args)
    print("bundle: {}".format(bundle))
    if report is not None:
        print("mIoU on --images/--masks (Keras): {:.4f}".format(report["miou"]))
    print("next: python3 convert/export_onnx.py --bundle {}".format(bundle))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
