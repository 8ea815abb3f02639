"""Keras callbacks of a training run: checkpoints, logs, early stopping, and resume state.

The counters of early stopping and LR-on-plateau are saved with the checkpoint so that
``--resume`` continues where the run stopped instead of with fresh patience.
"""
import os

from nanoseg import bundle as names
from nanoseg.bundle import TRAIN_LOG

def make_callbacks(work_dir, state, resume, patience, verbose):
    """Checkpoint (val_loss, min), TensorBoard, CSV log, early stop, LR on plateau, resume."""
    import tensorflow as tf
    from train import bundle_io
    best = tf.keras.callbacks.ModelCheckpoint(
        bundle_io.checkpoint_path(work_dir, names.BEST_WEIGHTS), monitor="val_loss",
        mode="min", save_best_only=True, save_weights_only=True, verbose=int(verbose > 0),
        initial_value_threshold=state.get("best"))
    early_stop = tf.keras.callbacks.EarlyStopping(monitor="val_loss", mode="min",
                                                  patience=patience, verbose=int(verbose > 0))
    reduce_lr = tf.keras.callbacks.ReduceLROnPlateau(monitor="val_loss", mode="min",
                                                     factor=0.5, patience=max(1, patience // 2),
                                                     verbose=int(verbose > 0))
    # Order matters: Keras calls callbacks in list order. ReduceLROnPlateau adds the epoch's
    # learning rate to the logs, so it precedes the CSV logger (an "lr" column); the resume
    # state comes last (see resume_state_callback).
    return [
        best,
        early_stop,
        reduce_lr,
        tf.keras.callbacks.TensorBoard(os.path.join(work_dir, names.LOGS_DIR),
                                       write_graph=False, profile_batch=0),
        tf.keras.callbacks.CSVLogger(os.path.join(work_dir, TRAIN_LOG), append=resume),
        resume_state_callback(work_dir, best, run_identity(state),
                              {"early_stopping": early_stop, "reduce_lr": reduce_lr},
                              state.get("counters")),
    ]


# The plateau counters of these callbacks: without them a resumed run would wait a full
# patience again before stopping or lowering the rate (the rate itself is an optimizer
# variable and comes back with the checkpoint).
COUNTER_ATTRIBUTES = ("wait", "best", "cooldown_counter")


def callback_counters(callbacks):
    """{name: {attribute: value}} of the plateau counters, JSON-ready (inf kept as None)."""
    counters = {}
    for name, callback in callbacks.items():
        values = {}
        for attribute in COUNTER_ATTRIBUTES:
            if hasattr(callback, attribute):
                value = float(getattr(callback, attribute))
                values[attribute] = value if abs(value) != float("inf") else None
        counters[name] = values
    return counters


def restore_callback_counters(callbacks, counters):
    """Put saved counters back (call after the callbacks' own on_train_begin reset them)."""
    for name, values in (counters or {}).items():
        callback = callbacks.get(name)
        for attribute, value in values.items():
            if callback is None or value is None or not hasattr(callback, attribute):
                continue
            kind = float if attribute == "best" else int
            setattr(callback, attribute, kind(value))


def resume_state_callback(work_dir, best_checkpoint, extra, counted=None, counters=None):
    """Every epoch: weights + optimizer (TF checkpoint), the epoch count and the plateau
    counters of ``counted`` callbacks, for --resume; restores ``counters`` at train begin.

    It must come after the ``counted`` callbacks in the list: Keras calls callbacks in order,
    so this one restores after their on_train_begin reset and records after their epoch end.
    It runs on every worker: saving reads synchronized variables (a collective op), and only
    the chief's work folder is the real one. The class is made here because Keras callbacks
    need TensorFlow, which the CLI imports only after parsing arguments.
    """
    import tensorflow as tf
    from train import bundle_io
    counted = counted or {}

    class ResumeState(tf.keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            restore_callback_counters(counted, counters)

        def on_epoch_end(self, epoch, logs=None):
            self.model.save_weights(bundle_io.checkpoint_path(work_dir,
                                                              names.LAST_WEIGHTS))
            best = best_checkpoint.best
            finite = best not in (float("inf"), float("-inf"))
            state = dict(extra, counters=callback_counters(counted))
            bundle_io.write_state(work_dir, epoch + 1, best if finite else None, state)

    return ResumeState()


def run_identity(state):
    """What a resumed run must repeat, kept in the resume state: the contract, whether
    masks are inverted (labels the contract alone does not pin down) and the data it was
    trained on (--data, --layout, --classes as given)."""
    identity = {"contract": state["contract"], "mask_invert": state["mask_invert"]}
    if state.get("data") is not None:
        identity["data"] = state["data"]
    return identity
