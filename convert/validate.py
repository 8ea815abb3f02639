"""Validate every format of a bundle against Keras: mIoU, agreement, latency, file size.

    python3 convert/validate.py --bundle B [--data D --layout L --split val]
        [--formats keras onnx onnx-fp16 tensorrt] [--tolerance 0.5] [--runs 20]
        [--json PATH] [--markdown PATH]

For each format that can run here (Keras ``model.h5`` when TensorFlow imports, ONNX FP32
``model.onnx`` and FP16 ``model_fp16.onnx`` when onnxruntime imports, a TensorRT engine from
``engines/`` when tensorrt imports and one matches ``model.onnx``) it scores the split with
nanoseg.evaluation's :func:`evaluate` (so the numbers mean what ``evaluation.json`` means),
measures per-pixel label agreement with the reference, max |dp| on ``golden.npz``, batch-1
latency after a warm-up, and the artifact's size. Formats that cannot run are listed with
the reason. The result is a Markdown table and a JSON report (default: validation.md /
validation.json in the bundle); exit status 2 when a format's mIoU is more than
``--tolerance`` points (default 0.5 = 0.005 mIoU) below the reference.

The reference is Keras run here when TensorFlow imports (agreement over the whole split).
On the Jetson (no TensorFlow) it is what Keras produced on the desktop: the mIoU stored in
``evaluation.json`` and the probabilities in ``golden.npz`` (agreement on its inputs).

The formats are the rows of edge.backends' table; the jobs live in convert/validation/
(measure, reference + gate, run, report). Python 3.6; TensorFlow, onnxruntime and tensorrt
are imported only when a format needs them.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import os
import sys

from convert.validation.measure import latency_ms, new_row  # noqa: F401 (the API)
from convert.validation.reference import REFERENCES, gate, require_passed  # noqa: F401
from convert.validation.report import format_markdown, write_reports
from convert.validation.run import DEFAULT_TOLERANCE, validate_bundle
from edge.backends import format_help, formats
from nanoseg import cli
from nanoseg.bundle import Bundle
from nanoseg.files import check_writable
from nanoseg.evaluation import add_dataset_args

VALIDATION_JSON = "validation.json"
VALIDATION_MD = "validation.md"


# -- CLI -----------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = cli.make_parser(
        "Validate a bundle's formats (Keras, ONNX FP32, ONNX FP16, TensorRT) against Keras: "
        "mIoU and per-class IoU on a split, label agreement, max |dp| on golden.npz, batch-1 "
        "latency and file size, as a Markdown table and JSON. Exit status 2 when a format's "
        "mIoU falls more than --tolerance points below the reference.")
    cli.add_bundle_arg(parser)
    add_dataset_args(parser, "data (default: the dataset the bundle was trained on)")
    parser.add_argument("--formats", nargs="+", default=None, choices=formats(),
                        help="formats to validate; named ones must be available (default: "
                             "all, unavailable ones listed with the reason). " + format_help())
    parser.add_argument("--reference", default="auto", choices=REFERENCES,
                        help="keras: run model.h5 here; golden: evaluation.json + golden.npz "
                             "(what the Jetson uses); auto: keras when TensorFlow imports")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_TOLERANCE,
                        help="allowed mIoU drop below the reference, in points (0.5 = 0.005)")
    parser.add_argument("--runs", type=int, default=20, help="timed batch-1 runs per format")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before timing")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                        help="ONNX Runtime device")
    parser.add_argument("--engine", default=None,
                        help="TensorRT engine file (default: the newest matching one in "
                             "BUNDLE/engines)")
    parser.add_argument("--json", default=None, help="JSON report (default BUNDLE/{})".format(
        VALIDATION_JSON))
    parser.add_argument("--markdown", default=None,
                        help="Markdown report (default BUNDLE/{})".format(VALIDATION_MD))
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    bundle = Bundle(args.bundle)
    for flag, given, default in (("--json", args.json, VALIDATION_JSON),
                                 ("--markdown", args.markdown, VALIDATION_MD)):
        if given or os.path.isdir(bundle.root):  # a missing bundle: its own error below
            check_writable(given or bundle.path(default), flag if given else "--bundle")
    report = validate_bundle(args.bundle, args.data, args.layout, args.split, args.classes,
                             args.formats, args.tolerance, args.runs, args.warmup,
                             args.device, args.reference, args.engine)
    json_path, md_path = write_reports(report, args.json or bundle.path(VALIDATION_JSON),
                                       args.markdown or bundle.path(VALIDATION_MD))
    print(format_markdown(report))
    print("wrote {} and {}".format(json_path, md_path))
    require_passed(report)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
