"""Training throughput benchmark: the input pipeline against the train step it feeds.

    python3 tools/benchmark_input.py --data ../shared/data/nails --layout flat --size 256 256 \
        --batch 8 --batches 20

prints a Markdown table, one row per measurement. Each row is made by a function
``row(context) -> dict`` listed in :data:`ROWS`; add a measurement (e.g. the train step) by
writing one more such function and appending it. The bare loop (cv2.imread + the contract's
resize, one thread) is the floor any pipeline pays for decoding; the tf.data row adds mask
decoding, albumentations, normalization, target encoding, batching and parallelism. The
train-step row times the model's forward+backward on batches already in memory, so the last
line can say whether the pipeline keeps up with the step or starves it.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import collections  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from nanoseg.cli import add_logging_args, make_parser, run, setup_logging  # noqa: E402
from nanoseg.contract import Contract  # noqa: E402
from nanoseg.errors import NanosegError  # noqa: E402
from nanoseg.normalization import NORMALIZATIONS, Normalization  # noqa: E402
from nanoseg.preprocess import IMAGE_READ_FLAGS, resize_image  # noqa: E402
from train import keras_env  # noqa: E402
from train.model import DEFAULT_BACKBONE, DEFAULT_SIZE  # noqa: E402
from nanoseg.datasets import LAYOUT_NAMES, open_dataset  # noqa: E402

LOG = logging.getLogger(__name__)

# What every row function gets: the opened dataset, its contract and the run's sizes.
BenchmarkContext = collections.namedtuple(
    "BenchmarkContext", ["dataset", "contract", "batch", "batches", "warmup", "num_parallel",
                         "backbone"])


def parse_args(argv=None):
    parser = make_parser("Measure the training input pipeline (images/s) against a bare "
                         "cv2 decode+resize loop and print a Markdown table.")
    parser.add_argument("--data", required=True, help="dataset root folder")
    parser.add_argument("--layout", default="flat", choices=LAYOUT_NAMES, help="dataset layout")
    parser.add_argument("--classes", nargs="*", default=None,
                        help="classes to read (layout-specific, as for train/train.py)")
    parser.add_argument("--size", nargs=2, type=int, default=list(DEFAULT_SIZE),
                        metavar=("HEIGHT", "WIDTH"), help="model input size")
    parser.add_argument("--batch", type=int, default=8, help="batch size")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per row")
    parser.add_argument("--warmup", type=int, default=2,
                        help="batches run before timing (tracing, thread start-up)")
    parser.add_argument("--num-parallel", type=int, default=None,
                        help="tf.data decode/augment threads (default: AUTOTUNE)")
    parser.add_argument("--normalization", default="scale", choices=sorted(NORMALIZATIONS),
                        help="normalization scheme applied by the pipeline")
    parser.add_argument("--backbone", default=DEFAULT_BACKBONE,
                        help="Unet backbone for the train-step row (train/train.py's default)")
    parser.add_argument("--skip-train-step", action="store_true",
                        help="time the input pipeline only")
    add_logging_args(parser)
    return parser.parse_args(argv)


def _row(name, images, seconds, notes):
    """A table row: what was timed, how many images, and the rate."""
    return collections.OrderedDict([
        ("pipeline", name), ("images", images), ("seconds", round(seconds, 2)),
        ("images/s", round(images / seconds, 1) if seconds > 0 else float("inf")),
        ("notes", notes)])


def decode_resize_row(context):
    """The floor: cv2.imread + the contract's resize of each image, one thread, no masks."""
    samples = context.dataset.samples
    count = context.batch * context.batches
    start = time.perf_counter()
    for i in range(count):
        image = cv2.imread(samples[i % len(samples)].image_path, IMAGE_READ_FLAGS)
        if image is None:
            raise NanosegError("cannot read image {}".format(samples[i % len(samples)]
                                                             .image_path))
        resize_image(image, context.contract.size)
    return _row("bare decode + resize (cv2, 1 thread)", count,
                time.perf_counter() - start, "image only")


def tf_data_row(context):
    """The training pipeline with augmentation, as train/train.py runs it."""
    return _time_tf_data(context, augment=True, name="tf.data + augmentation")


def tf_data_plain_row(context):
    """The same pipeline without augmentation: the difference is albumentations' cost."""
    return _time_tf_data(context, augment=False, name="tf.data, no augmentation")


def _time_tf_data(context, augment, name):
    """Time ``context.batches`` batches of make_tf_dataset after ``context.warmup`` ones."""
    import tensorflow as tf
    from train.pipeline import make_tf_dataset, nanoseg_error_from, pipeline_parallelism
    data = make_tf_dataset(context.dataset, context.contract, context.batch, augment=augment,
                           shuffle=True, seed=0, num_parallel=context.num_parallel).repeat()
    iterator = iter(data)
    try:
        for _ in range(context.warmup):
            next(iterator)
        start = time.perf_counter()
        for _ in range(context.batches):
            next(iterator)
        seconds = time.perf_counter() - start
    except tf.errors.OpError as exc:
        error = nanoseg_error_from(exc)
        if error is None:
            raise
        raise error
    threads = pipeline_parallelism(context.num_parallel)
    return _row(name, context.batch * context.batches, seconds,
                "image+mask, {} threads, batch {}".format(
                    "AUTOTUNE" if threads == tf.data.AUTOTUNE else threads, context.batch))


def train_step_row(context):
    """Forward + backward + Adam update of the Unet, on batches already in memory.

    Same model, loss and optimizer as train/train.py (build_model + compile_model), so the
    rate is what the step can consume; the first step (graph tracing) is not timed.
    """
    from train.model import build_model, compile_model
    from train.pipeline import Dataset
    dataset = Dataset(context.dataset, context.contract)
    x, y = zip(*(dataset[i % len(dataset)] for i in range(context.batch)))
    batch_x, batch_y = np.stack(x), np.stack(y)
    model = build_model(context.backbone, context.contract, encoder_weights=None)
    compile_model(model, context.contract)
    for _ in range(max(1, context.warmup)):
        model.train_on_batch(batch_x, batch_y)
    start = time.perf_counter()
    for _ in range(context.batches):
        model.train_on_batch(batch_x, batch_y)
    return _row("train step ({} Unet)".format(context.backbone), context.batch * context.batches,
                time.perf_counter() - start, "forward+backward, batch {}".format(context.batch))


ROWS = (decode_resize_row, tf_data_plain_row, tf_data_row)


def starvation_verdict(rows):
    """One line: does the augmented pipeline deliver images faster than the step eats them?"""
    rates = {row["pipeline"].split(" (")[0]: row["images/s"] for row in rows}
    pipeline, step = rates.get("tf.data + augmentation"), rates.get("train step")
    if pipeline is None or step is None:
        return None
    if pipeline >= step:
        return ("the pipeline keeps up: {} images/s delivered vs {} images/s trained "
                "({:.1f}x headroom)".format(pipeline, step, pipeline / step))
    return ("the pipeline STARVES the step: {} images/s delivered vs {} images/s trained; "
            "raise --num-parallel, lighten augmentation or cache decoded images".format(
                pipeline, step))


def run_benchmark(context, rows=ROWS):
    """Call each row function in turn and collect their dicts."""
    results = []
    for row in rows:
        LOG.info("timing %s", row.__name__)
        results.append(row(context))
    return results


def format_table(rows):
    """A Markdown table of row dicts (columns in first-seen order)."""
    columns = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(key, "")) for key in columns) + " |")
    return "\n".join(lines)


def make_context(args):
    """Open the dataset and build the contract the pipeline runs under."""
    for flag, value, least in (("--batch", args.batch, 1), ("--batches", args.batches, 1),
                               ("--warmup", args.warmup, 0), ("--size", min(args.size), 1)):
        if value < least:
            raise NanosegError("{} must be at least {}, got {}".format(flag, least, value))
    dataset = open_dataset(args.data, args.layout, split="all", classes=args.classes)
    activation = "sigmoid" if len(dataset.class_names) == 1 else "softmax"
    contract = Contract.create(args.size[0], args.size[1], activation=activation,
                               normalization=Normalization.named(args.normalization),
                               **dataset.contract_classes())
    return BenchmarkContext(dataset, contract, args.batch, args.batches, args.warmup,
                            args.num_parallel, args.backbone)


def main(args):
    setup_logging(args.log_level)
    keras_env.prepare()
    context = make_context(args)
    rows = run_benchmark(context, ROWS if args.skip_train_step else ROWS + (train_step_row,))
    print("{} images from {} at {}x{}, {} CPUs".format(
        len(context.dataset), args.data, args.size[0], args.size[1], os.cpu_count()))
    print(format_table(rows))
    verdict = starvation_verdict(rows)
    if verdict:
        print(verdict)
    return 0


if __name__ == "__main__":
    raise SystemExit(run(main, parse_args))
