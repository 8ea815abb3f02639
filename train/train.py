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
import sys

from nanoseg import cli
from nanoseg.datasets import layout_row
from nanoseg.files import check_writable
from train.distribute import check_validation_size, cluster_info, make_strategy, steps_for
from train.fitting import best_float32_model, fit_model
from train.resume_check import check_resumable
from train.run_inputs import log_binary_class, make_contract, open_datasets
from train.train_args import LAYOUT_FLAGS, check_args, check_layout_flags, parse_args
from train.write_bundle import write_bundle

LOG = logging.getLogger(__name__)

# What this CLI offers to code and tests that drive a run (the jobs live in the modules
# imported above; these names stay importable from train.train).
__all__ = ["LAYOUT_FLAGS", "check_args", "check_layout_flags", "check_resumable", "main",
           "make_contract", "open_datasets", "parse_args", "train"]


def main(args):
    cli.setup_logging(args.log_level)
    if args.log_level != "DEBUG":   # tf.distribute logs every all-reduce at INFO
        logging.getLogger("tensorflow").setLevel(logging.WARNING)
    from train import keras_env
    keras_env.prepare()
    bundle = train(args)
    print("bundle: {}".format(bundle))
    return 0


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
    check_resumable(state, contract, args)
    replicas = strategy.num_replicas_in_sync
    global_batch = args.batch * replicas
    LOG.info("strategy %s: %d replica(s), %d worker(s), global batch %d", args.strategy,
             replicas, pipelines, global_batch)
    fit_model(args, strategy, contract, train_set, val_set, work_dir, state, global_batch,
              pipelines, extra_callbacks)
    if not is_chief:     # only the chief writes the bundle
        import shutil
        shutil.rmtree(work_dir, ignore_errors=True)
        return None
    best = best_float32_model(args, contract, work_dir)
    write_bundle(best, args, contract, train_set, val_set, work_dir, args.strategy,
                 strategy.num_replicas_in_sync)
    return bundle_io.publish(work_dir, args.out)


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
