"""What training sees: (image, labels) samples turned into model inputs and masked targets.

Three ways to feed Keras, one sample path (:func:`load_sample`):
read (RGB uint8, label mask) -> optional albumentations augmentation on uint8 ->
``nanoseg.preprocess.preprocess_image(image, contract, "RGB")`` for the input and a nearest
resize + :func:`encode_target` for the target. Validation skips augmentation, so the
validation input *is* what the edge computes from the same picture (tests/test_preprocess.py
proves it bit for bit).

- :class:`Dataset` / :class:`Dataloader`: indexable + a ``keras.utils.Sequence`` that batches,
  drops the incomplete last batch and reshuffles every epoch (the CamVid tutorial's shape);
- :func:`make_tf_dataset`: ``tf.data`` with parallel decode/augment through
  ``tf.numpy_function``, static shapes restored, shard/per-replica batch for
  ``tf.distribute``, batch and prefetch.

A ``segmentation_dataset`` is anything with ``len()`` and ``load(index) -> (rgb uint8
HxWx3, labels uint8 HxW)``, i.e. ``nanoseg.datasets.SegmentationDataset``.
Import after ``train.keras_env.prepare()``.
"""
import logging
import os

import numpy as np
import tensorflow as tf

from nanoseg.preprocess import preprocess_image, resize_mask
from nanoseg.errors import NanosegError
from train.augment import build_augmentation

LOG = logging.getLogger(__name__)


# -- one sample ----------------------------------------------------------------------------
def encode_target(labels, contract):
    """uint8 HxW labels -> float32 HxWx(C+1): the target channels, then a validity channel.

    Sigmoid (C=1): P(label 1). Softmax (C=num_labels): one-hot, background first. The last
    channel is 0 where the label is the ignore id, so losses and metrics can mask those
    pixels out (their target channels are all 0 too).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise NanosegError("label mask must be HxW class ids, got shape {}".format(
            labels.shape))
    _check_label_ids(labels, contract)
    valid = np.ones(labels.shape, dtype=bool) if contract.ignore_id is None \
        else labels != contract.ignore_id
    if contract.activation == "sigmoid":
        target = (labels == 1)[:, :, None]
    else:
        target = labels[:, :, None] == np.arange(contract.num_labels, dtype=labels.dtype)
    out = np.empty(labels.shape + (contract.output_channels + 1,), dtype=np.float32)
    out[:, :, :-1] = target
    out[:, :, -1] = valid
    return out


def _check_label_ids(labels, contract):
    """Refuse ids outside 0..N and the ignore id: they would silently count as background."""
    allowed = set(range(contract.num_labels))
    if contract.ignore_id is not None:
        allowed.add(contract.ignore_id)
    found = set(np.unique(labels).tolist())
    bad = sorted(found - allowed)
    if bad:
        raise NanosegError(
            "label mask has ids {} but the contract's labels are 0..{} (+ ignore {}): the "
            "reader must map dataset ids to labels (check --classes)".format(
                bad, contract.num_labels - 1, contract.ignore_id))


def _sample_name(segmentation_dataset, index):
    """A human name for sample ``index`` (its image file when the reader says)."""
    samples = getattr(segmentation_dataset, "samples", None)
    if samples is not None and 0 <= index < len(samples):
        return getattr(samples[index], "image_path", None) or str(samples[index])
    return "sample {}".format(index)


def load_sample(segmentation_dataset, index, contract, augmentation=None, seed=None):
    """Sample ``index`` as (x float32 HxWx3, y float32 HxWx(C+1)), the one path to the model.

    Augmentation (if any) runs on the uint8 originals; the input is then made by the
    contract's own :func:`nanoseg.preprocess.preprocess_image`, nothing else resizes or
    normalizes. Errors name the sample's file.
    """
    image, labels = segmentation_dataset.load(index)
    if augmentation is not None:
        image, labels = augmentation(image, labels, seed=seed)
    x = preprocess_image(image, contract, "RGB")
    try:
        y = encode_target(resize_mask(labels, contract.size), contract)
    except NanosegError as exc:
        raise NanosegError("{}: {}".format(_sample_name(segmentation_dataset, index), exc))
    return x, y


# -- indexable dataset + keras Sequence ------------------------------------------------------
class Dataset(object):
    """``dataset[i] -> (x, y)``: a reader plus a contract (and augmentation for training)."""

    def __init__(self, segmentation_dataset, contract, augmentation=None):
        self.segmentation_dataset = segmentation_dataset
        self.contract = contract
        self.augmentation = augmentation

    def __len__(self):
        return len(self.segmentation_dataset)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError("sample {} out of range 0..{}".format(index, len(self) - 1))
        return load_sample(self.segmentation_dataset, index % len(self), self.contract,
                           self.augmentation)


def _check_batch_size(num_samples, batch_size, what):
    """Training drops the incomplete batch, so fewer samples than a batch means no step."""
    if batch_size < 1:
        raise NanosegError("--batch must be at least 1, got {}".format(batch_size))
    if num_samples < batch_size:
        raise NanosegError(
            "{} has {} samples, fewer than one batch of {}: lower --batch or add "
            "images".format(what, num_samples, batch_size))


class Dataloader(tf.keras.utils.Sequence):
    """Batches of a :class:`Dataset` for ``model.fit``; drops the incomplete last batch.

    With ``shuffle`` the order is a fresh permutation each epoch, drawn from
    ``(seed, epoch)``: different every epoch, identical across runs with the same seed.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, seed=None):
        super(Dataloader, self).__init__()
        _check_batch_size(len(dataset), batch_size, "the dataset")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.epoch = 0
        self.indexes = self._order()

    def _order(self):
        """This epoch's sample order."""
        indexes = np.arange(len(self.dataset))
        if self.shuffle:
            entropy = None if self.seed is None else [int(self.seed), self.epoch]
            np.random.default_rng(entropy).shuffle(indexes)
        return indexes

    def __len__(self):
        return len(self.dataset) // self.batch_size

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError("batch {} out of range 0..{}".format(i, len(self) - 1))
        chosen = self.indexes[i * self.batch_size:(i + 1) * self.batch_size]
        samples = [self.dataset[int(j)] for j in chosen]
        return tuple(np.stack(parts, axis=0) for parts in zip(*samples))

    def on_epoch_end(self):
        """Keras calls this after every epoch: draw the next epoch's order."""
        self.epoch += 1
        self.indexes = self._order()


class WrapAroundPadding(object):
    """A segmentation dataset whose first images repeat after its end, up to ``total``.

    Validation under several replicas or workers needs a full, static-shaped batch on every
    replica and the same steps everywhere: a replica given no images makes the Dice/Focal
    loss NaN, and one given only all-ignored padding scores a perfect IoU. Filling the last
    global batch with the split's first images keeps every per-replica batch real; every
    image is scored, fewer than one global batch of them twice.
    """

    def __init__(self, segmentation_dataset, total):
        if not len(segmentation_dataset):
            raise NanosegError("cannot pad an empty validation split")
        self.segmentation_dataset = segmentation_dataset
        self.total = max(int(total), len(segmentation_dataset))
        samples = getattr(segmentation_dataset, "samples", None)
        # Wrapped like load(), so an error on a padded index names the real file.
        self.samples = None if samples is None else \
            [samples[i % len(samples)] for i in range(self.total)]

    def __len__(self):
        return self.total

    def load(self, index):
        return self.segmentation_dataset.load(index % len(self.segmentation_dataset))


# -- tf.data -----------------------------------------------------------------------------------
def _as_augmentation(augment, seed, contract):
    """``augment`` may be False/None, True (the default recipe), a recipe name or a callable."""
    if augment is None or augment is False:
        return None
    if augment is True:
        return build_augmentation("default", seed=seed, ignore_id=contract.ignore_id)
    if isinstance(augment, str):
        return build_augmentation(augment, seed=seed, ignore_id=contract.ignore_id)
    if callable(augment):
        return augment
    raise NanosegError("augment must be True/False, a recipe name or an Augmentation, got "
                       "{!r}".format(augment))


def pipeline_parallelism(num_parallel=None, input_context=None):
    """Threads for decode/augment: explicit, or this machine's CPUs over its devices, or AUTOTUNE.

    Under tf.distribute each worker (input pipeline) runs on its own machine and feeds its
    own devices, so the CPUs are shared among the *local* replicas: all replicas in sync
    divided by the number of input pipelines (the tutorial's cpu_count // GPUs).
    """
    if num_parallel:
        return int(num_parallel)
    if input_context is not None:
        local_devices = max(1, input_context.num_replicas_in_sync
                            // max(1, input_context.num_input_pipelines))
        return max(1, (os.cpu_count() or 1) // local_devices)
    return tf.data.AUTOTUNE


def make_tf_dataset(segmentation_dataset, contract, batch_size, augment, shuffle, seed,
                    input_context=None, num_parallel=None, drop_remainder=None):
    """A ``tf.data.Dataset`` of (x, y) batches with fully static shapes when training.

    Sample indices are sharded (one shard per input pipeline with ``input_context``),
    shuffled (the whole index list: a perfect shuffle without holding decoded images),
    zipped with a per-sample augmentation seed, then loaded in parallel through
    ``tf.numpy_function`` -> :func:`load_sample`. ``batch_size`` is global; with an
    ``input_context`` each pipeline batches its per-replica share. ``drop_remainder``
    defaults to ``shuffle`` (training: every step sees a full, static-shaped batch).
    """
    augmentation = _as_augmentation(augment, seed, contract)
    if drop_remainder is None:
        drop_remainder = bool(shuffle)
    num_local = len(segmentation_dataset)
    indices = tf.data.Dataset.range(num_local)
    what = "the dataset"
    if input_context is not None:
        replicas = input_context.num_replicas_in_sync
        if batch_size % replicas:
            raise NanosegError("--batch {} does not split evenly over {} replicas: use a "
                               "multiple of {}".format(batch_size, replicas, replicas))
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        shard, shards = input_context.input_pipeline_id, input_context.num_input_pipelines
        indices = indices.shard(shards, shard)
        num_local = len(range(shard, num_local, shards))
        what = "shard {} of {} of the dataset".format(shard, shards)
    if drop_remainder:
        _check_batch_size(num_local, batch_size, what)
    if shuffle:
        indices = indices.shuffle(max(1, num_local), seed=seed, reshuffle_each_iteration=True)
    sample_seeds = _sample_seeds(seed, input_context)
    pairs = tf.data.Dataset.zip((indices, sample_seeds))
    load = _tf_loader(segmentation_dataset, contract, augmentation)
    parallel = pipeline_parallelism(num_parallel, input_context)
    LOG.debug("tf.data: %d samples, batch %d, shuffle %s, augmentation %r, %s threads",
              num_local, batch_size, shuffle, augmentation, parallel)
    data = pairs.map(load, num_parallel_calls=parallel, deterministic=True)
    return data.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)


def _sample_seeds(seed, input_context):
    """An endless stream of int64 augmentation seeds, new each epoch, reproducible from seed."""
    if seed is not None and input_context is not None:
        seed = int(seed) + 7919 * input_context.input_pipeline_id
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)


def _tf_loader(segmentation_dataset, contract, augmentation):
    """The map function: (index, seed) tensors -> (x, y) tensors with static shapes."""
    x_shape = (contract.height, contract.width, 3)
    y_shape = (contract.height, contract.width, contract.output_channels + 1)

    def load_numpy(index, seed):
        return load_sample(segmentation_dataset, int(index), contract, augmentation,
                           seed=int(seed))

    def load(index, seed):
        x, y = tf.numpy_function(load_numpy, [index, seed], [tf.float32, tf.float32],
                                 name="nanoseg_load_sample")
        x.set_shape(x_shape)
        y.set_shape(y_shape)
        return x, y

    return load


def nanoseg_error_from(exc):
    """The NanosegError a ``tf.numpy_function`` raised, recovered from TensorFlow's wrapper.

    tf.data reports an exception in a numpy function as a ``tf.errors.OpError`` whose
    message holds ``NanosegError: <message>`` plus a Python traceback; training loops catch
    OpError and re-raise this so the user sees one line. Returns None for other errors.
    """
    text = getattr(exc, "message", None) or str(exc)
    marker = "NanosegError: "
    start = text.find(marker)
    if start < 0:
        return None
    line = text[start + len(marker):].splitlines()[0].strip()
    return NanosegError(line)


__all__ = ["Dataloader", "Dataset", "WrapAroundPadding", "encode_target",
           "load_sample", "make_tf_dataset", "nanoseg_error_from", "pipeline_parallelism"]
