"""tf.distribute for training: the strategy, cluster facts, and per-replica input pipelines.

One process (default), several GPUs (mirrored) or several machines (multiworker): the
training loop stays the same, only the strategy and how the data is sharded change.
"""
import json
import logging
import os

from nanoseg.errors import NanosegError

LOG = logging.getLogger(__name__)
STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name):
    """The tf.distribute strategy (create it before any other TensorFlow op)."""
    import tensorflow as tf
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    config = os.environ.get("TF_CONFIG")
    if not config:
        raise NanosegError("--strategy multiworker needs TF_CONFIG (the cluster and this "
                           "worker's task), e.g. {\"cluster\": {\"worker\": [\"host1:12345\", "
                           "\"host2:12345\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}}")
    try:
        json.loads(config)["cluster"]
    except (ValueError, KeyError, TypeError) as exc:
        raise NanosegError("TF_CONFIG is not valid JSON with a \"cluster\" ({})".format(exc))
    return tf.distribute.MultiWorkerMirroredStrategy()


def cluster_info(strategy):
    """(number of input pipelines = workers, is_chief) for any strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return 1, True
    spec = resolver.cluster_spec().as_dict()
    workers = sum(len(spec.get(kind, [])) for kind in ("chief", "worker"))
    task_type, task_id = resolver.task_type, resolver.task_id
    is_chief = task_type == "chief" or (task_type == "worker" and task_id == 0
                                        and "chief" not in spec)
    return max(1, workers), is_chief


def steps_for(num_samples, global_batch, pipelines, what):
    """Full global batches every worker can take (the smallest shard decides)."""
    steps = (num_samples // pipelines) // max(1, global_batch // pipelines)
    if steps < 1:
        raise NanosegError("the {} split has {} images, fewer than one global batch of {} "
                           "(--batch x replicas): lower --batch or add images".format(
                               what, num_samples, global_batch))
    return steps


def check_validation_size(num_samples, pipelines):
    """Validation scores every image in batches of any size; each worker needs one image."""
    if num_samples < pipelines:
        raise NanosegError("the validation split has {} images, fewer than the {} workers "
                           "that each score a share of it: add validation images (or a "
                           "larger --val-fraction)".format(num_samples, pipelines))


def distributed_data(strategy, dataset, contract, global_batch, augment, shuffle, seed,
                     drop_remainder=True):
    """Per-worker sharded, per-replica batched input through an InputContext.

    Training drops the incomplete batch (static shapes, equal steps on every replica);
    validation goes through :func:`validation_input`, which scores every image.
    """
    from train.pipeline import make_tf_dataset

    def dataset_fn(input_context):
        return make_tf_dataset(dataset, contract, global_batch, augment, shuffle, seed,
                               input_context=input_context, drop_remainder=drop_remainder)

    return strategy.distribute_datasets_from_function(dataset_fn)


def validation_input(strategy, val_set, contract, global_batch, pipelines, seed):
    """(distributed validation data, steps) that score every validation image.

    Keras needs the step count of a distributed dataset: every batch, the last incomplete
    one included. One replica takes that incomplete batch as it is: each image counts
    once. Several replicas or workers must each get a full batch of static shape, so the
    last global batch is filled with the split's first images again
    (:class:`train.pipeline.WrapAroundPadding`).
    """
    steps = -(-len(val_set) // global_batch)
    if strategy.num_replicas_in_sync * pipelines == 1:
        return distributed_data(strategy, val_set, contract, global_batch, None, False, seed,
                                drop_remainder=False), steps
    from train.pipeline import WrapAroundPadding
    padded = WrapAroundPadding(val_set, steps * global_batch)
    if len(padded) > len(val_set):
        LOG.info("validation: %d images in %d global batches of %d; the last batch repeats "
                 "%d of them so that every replica gets a full batch", len(val_set), steps,
                 global_batch, len(padded) - len(val_set))
    return distributed_data(strategy, padded, contract, global_batch, None, False, seed,
                            drop_remainder=True), steps
