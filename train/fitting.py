"""Keras fit inside the distribution strategy, and the best weights read back after it."""
import logging
import os

from nanoseg import bundle as names
from nanoseg.errors import NanosegError
from train.callbacks import make_callbacks, run_identity
from train.distribute import distributed_data, steps_for, validation_input

LOG = logging.getLogger(__name__)


def fit_model(args, strategy, contract, train_set, val_set, work_dir, state, global_batch,
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
    check_room(model, work_dir, args.out)
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


# A run writes the weights four times (best and last checkpoints, model.h5, weights.h5),
# plus logs, curves and the evaluation: room for the first four and this much more.
ROOM_MARGIN = 16 << 20


def check_room(model, work_dir, out):
    """A one-line error before the first epoch when the disk of ``work_dir`` cannot hold
    what the run will write: h5py meets a full disk with a traceback and may crash the
    process at exit, after the epochs are spent."""
    import shutil
    weights = sum(int(w.shape.num_elements() or 0) * w.dtype.size for w in model.weights)
    needed = 4 * weights + ROOM_MARGIN
    free = shutil.disk_usage(work_dir).free
    if free < needed:
        raise NanosegError("--out {}: {:.1f} MB free on its disk, and the run writes about "
                           "{:.0f} MB (checkpoints and the bundle's model files): free space "
                           "there or pick another --out".format(out, free / 1e6, needed / 1e6))


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


def best_float32_model(args, contract, work_dir):
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

