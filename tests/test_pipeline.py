"""train/pipeline.py: targets, Dataset/Dataloader batching, tf.data, augmented feeds.

Real nails images through the project's flat reader; hand-made labels where the exact
answer must be known. The tf.data checks prove static shapes (what Keras and the ONNX
export need) and that without augmentation it yields exactly the Dataset's values. (The
augmentation itself is tests/test_augment.py.)
"""
import os

import numpy as np
import pytest

from nanoseg.contract import Contract, IGNORE_ID
from nanoseg.normalization import Normalization
from nanoseg.errors import NanosegError
from train.augment import build_augmentation

import tensorflow as tf  # noqa: E402

from nanoseg.evaluation import iterate_validation  # noqa: E402
from train.pipeline import (Dataloader, Dataset, encode_target, make_tf_dataset,  # noqa
                            nanoseg_error_from, pipeline_parallelism)
from nanoseg.datasets import SegmentationDataset, open_dataset  # noqa: E402

SIZE = (64, 96)
NUM_IMAGES = 10


def _binary_contract(size=SIZE):
    return Contract.create(size[0], size[1], ["nail"], "sigmoid", Normalization.named("scale"))


def _softmax_contract(names=("a", "b")):
    return Contract.create(2, 3, list(names), "softmax", Normalization.named("scale"))


@pytest.fixture(scope="module")
def nails(nails_dir):
    """Ten real nails pairs, read by the project's flat reader (noisy JPEG masks -> 0/1)."""
    full = open_dataset(nails_dir, "flat", split="all")
    return SegmentationDataset(full.samples[:NUM_IMAGES], full.class_names, full.source_ids,
                               full.colors, full.mask_decoder, root=full.root,
                               layout=full.layout, split=full.split)


class _Frames(object):
    """A reader stand-in with hand-made samples: one image, masks as given."""

    def __init__(self, masks):
        self.masks = masks
        rng = np.random.RandomState(0)
        self.image = rng.randint(0, 256, masks[0].shape + (3,)).astype(np.uint8)

    def __len__(self):
        return len(self.masks)

    def load(self, index):
        return self.image.copy(), self.masks[index].copy()


# -- targets ---------------------------------------------------------------------------------
def test_encode_target_sigmoid_marks_ignore_invalid():
    labels = np.array([[0, 1, IGNORE_ID], [1, 1, 0]], dtype=np.uint8)
    y = encode_target(labels, _binary_contract())
    assert y.dtype == np.float32 and y.shape == (2, 3, 2)
    assert np.array_equal(y[:, :, 0], [[0, 1, 0], [1, 1, 0]])
    assert np.array_equal(y[:, :, 1], [[1, 1, 0], [1, 1, 1]])


def test_encode_target_softmax_one_hot_and_validity():
    labels = np.array([[0, 1, 2], [IGNORE_ID, 2, 0]], dtype=np.uint8)
    y = encode_target(labels, _softmax_contract())
    assert y.shape == (2, 3, 4)
    assert np.array_equal(np.argmax(y[0, :, :3], axis=-1), [0, 1, 2])
    assert np.array_equal(y[1, 0], [0, 0, 0, 0])       # ignored: no class, not valid
    assert np.array_equal(y[1, 1], [0, 0, 1, 1])
    assert np.array_equal(y[:, :, :3].sum(axis=-1), y[:, :, 3])


def test_encode_target_refuses_ids_outside_the_contract():
    labels = np.array([[0, 1, 7]], dtype=np.uint8)
    with pytest.raises(NanosegError, match=r"ids \[7\] but the contract's labels are 0..1"):
        encode_target(labels, _binary_contract())
    with pytest.raises(NanosegError, match="HxW"):
        encode_target(np.zeros((2, 2, 3), np.uint8), _binary_contract())


def test_bad_label_names_the_file_in_dataset_path():
    class Named(_Frames):
        samples = [type("S", (), {"image_path": "/data/images/bad.jpg"})()]
    dataset = Dataset(Named([np.full((8, 8), 3, np.uint8)]), _binary_contract())
    with pytest.raises(NanosegError, match=r"^/data/images/bad.jpg: label mask has ids \[3\]"):
        dataset[0]


def test_padded_index_names_the_file_it_repeats():
    from train.pipeline import WrapAroundPadding

    class Named(_Frames):
        samples = [type("S", (), {"image_path": "/data/images/{}.jpg".format(n)})()
                   for n in ("a", "bad", "c")]
    good, bad = np.zeros((8, 8), np.uint8), np.full((8, 8), 3, np.uint8)
    padded = WrapAroundPadding(Named([good, bad, good]), 5)
    assert [s.image_path for s in padded.samples][3:] == ["/data/images/a.jpg",
                                                          "/data/images/bad.jpg"]
    with pytest.raises(NanosegError, match=r"^/data/images/bad.jpg: label mask has ids \[3\]"):
        Dataset(padded, _binary_contract())[4]


# -- Dataset and Dataloader ---------------------------------------------------------------
def test_dataset_shapes_dtypes_and_values(nails):
    contract = _binary_contract()
    dataset = Dataset(nails, contract)
    assert len(dataset) == NUM_IMAGES
    x, y = dataset[3]
    assert x.dtype == np.float32 and x.shape == SIZE + (3,)
    assert y.dtype == np.float32 and y.shape == SIZE + (2,)
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) <= {0.0, 1.0}
    assert y[:, :, 0].sum() > 0, "a nails mask has some foreground"
    assert y[:, :, 1].all(), "nails masks have no ignore pixels"
    labels = [lab for _, lab in iterate_validation(nails, contract)]
    assert np.array_equal(labels[3], y[:, :, 0].astype(np.uint8))
    assert np.array_equal(dataset[-1][0], dataset[NUM_IMAGES - 1][0])
    with pytest.raises(IndexError):
        dataset[NUM_IMAGES]


def test_dataloader_drops_last_batch_and_stacks(nails):
    dataset = Dataset(nails, _binary_contract())
    loader = Dataloader(dataset, batch_size=4, shuffle=False)
    assert len(loader) == 2  # 10 samples, batch 4: the last 2 are dropped
    x, y = loader[1]
    assert x.shape == (4,) + SIZE + (3,) and y.shape == (4,) + SIZE + (2,)
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert np.array_equal(x[2], dataset[6][0])
    with pytest.raises(IndexError):
        loader[2]
    with pytest.raises(NanosegError, match="10 samples, fewer than one batch of 16"):
        Dataloader(dataset, batch_size=16)


def test_dataloader_shuffles_each_epoch_deterministically():
    dataset = list(range(40))  # only len() and indexing are used for the order
    first, again = Dataloader(dataset, 8, shuffle=True, seed=3), \
        Dataloader(dataset, 8, shuffle=True, seed=3)
    orders = []
    for _ in range(3):
        assert np.array_equal(first.indexes, again.indexes)
        assert sorted(first.indexes) == list(range(40))
        orders.append(first.indexes.copy())
        first.on_epoch_end()
        again.on_epoch_end()
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])
    other = Dataloader(dataset, 8, shuffle=True, seed=4)
    assert not np.array_equal(other.indexes, orders[0])
    assert np.array_equal(Dataloader(dataset, 8).indexes, np.arange(40))


# -- tf.data --------------------------------------------------------------------------------
def test_tf_dataset_training_has_static_shapes(nails):
    data = make_tf_dataset(nails, _binary_contract(), batch_size=4, augment=True,
                           shuffle=True, seed=1)
    for spec in data.element_spec:
        assert spec.shape.is_fully_defined(), spec
        assert spec.dtype == tf.float32
    assert [s.shape.as_list() for s in data.element_spec] == [[4, 64, 96, 3], [4, 64, 96, 2]]
    batches = list(data.as_numpy_iterator())
    assert len(batches) == 2  # drop_remainder for training
    for x, y in batches:
        assert np.isfinite(x).all() and set(np.unique(y)) <= {0.0, 1.0}
        target, valid = y[..., 0], y[..., 1]
        assert not (target * (1 - valid)).any(), "ignored pixels must carry no target"


def test_tf_dataset_without_augmentation_equals_dataset(nails):
    contract = _binary_contract()
    dataset = Dataset(nails, contract)
    data = make_tf_dataset(nails, contract, batch_size=3, augment=False, shuffle=False,
                           seed=0, num_parallel=2)
    batches = list(data.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [3, 3, 3, 1]  # validation keeps the last batch
    xs = np.concatenate([x for x, _ in batches])
    ys = np.concatenate([y for _, y in batches])
    for i in range(NUM_IMAGES):
        x, y = dataset[i]
        assert np.array_equal(xs[i], x) and np.array_equal(ys[i], y)


def test_tf_dataset_shuffle_is_seeded_and_changes_per_epoch(nails):
    contract = _binary_contract()
    reference = [Dataset(nails, contract)[i][0] for i in range(NUM_IMAGES)]

    def epoch_orders(seed):
        data = make_tf_dataset(nails, contract, batch_size=5, augment=False, shuffle=True,
                               seed=seed)
        orders = []
        for _ in range(2):
            xs = np.concatenate([x for x, _ in data.as_numpy_iterator()])
            orders.append([next(j for j, r in enumerate(reference) if np.array_equal(r, x))
                           for x in xs])
        return orders

    first = epoch_orders(7)
    assert sorted(first[0]) == list(range(NUM_IMAGES))
    assert first[0] != first[1], "reshuffled each epoch"
    assert epoch_orders(7) == first, "same seed, same order"


def test_tf_dataset_shards_for_distribution(nails):
    contract = _binary_contract()
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                         num_replicas_in_sync=2)
    data = make_tf_dataset(nails, contract, batch_size=4, augment=False, shuffle=False,
                           seed=0, input_context=context, drop_remainder=True)
    assert data.element_spec[0].shape.as_list() == [2, 64, 96, 3]  # per-replica batch
    xs = np.concatenate([x for x, _ in data.as_numpy_iterator()])
    dataset = Dataset(nails, contract)
    assert len(xs) == 4  # shard 1 holds samples 1,3,5,7,9; the incomplete batch is dropped
    for x, i in zip(xs, (1, 3, 5, 7)):
        assert np.array_equal(x, dataset[i][0])
    with pytest.raises(NanosegError, match="--batch 5 does not split evenly over 2 replicas"):
        make_tf_dataset(nails, contract, 5, False, False, 0, input_context=context)
    cpus = os.cpu_count() or 1
    assert pipeline_parallelism(None, context) == cpus          # 2 workers, 1 device each
    four_gpus = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                           num_replicas_in_sync=4)
    assert pipeline_parallelism(None, four_gpus) == max(1, cpus // 4)
    two_by_two = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0,
                                            num_replicas_in_sync=4)
    assert pipeline_parallelism(None, two_by_two) == max(1, cpus // 2)
    assert pipeline_parallelism(3, context) == 3


def test_tf_dataset_error_comes_back_as_one_line(nails):
    bad = _Frames([np.zeros((20, 30), np.uint8), np.full((20, 30), 9, np.uint8)])
    data = make_tf_dataset(bad, _binary_contract(), batch_size=2, augment=False,
                           shuffle=False, seed=0)
    with pytest.raises(tf.errors.OpError) as info:
        list(data.as_numpy_iterator())
    error = nanoseg_error_from(info.value)
    assert isinstance(error, NanosegError)
    assert str(error).startswith("sample 1: label mask has ids [9]")
    assert nanoseg_error_from(ValueError("other")) is None
    with pytest.raises(NanosegError, match="2 samples, fewer than one batch of 4"):
        make_tf_dataset(bad, _binary_contract(), 4, augment=False, shuffle=True, seed=0)


# -- augmentation through the pipeline ----------------------------------------------------
def test_tf_dataset_augmentation_is_reproducible_with_seed(nails):
    def first_epoch(seed):
        data = make_tf_dataset(nails, _binary_contract(), batch_size=5, augment=True,
                               shuffle=True, seed=seed, num_parallel=2)
        return np.concatenate([x for x, _ in data.as_numpy_iterator()])

    first = first_epoch(11)
    assert np.array_equal(first, first_epoch(11)), "same seed, same augmented epoch"
    assert not np.array_equal(first, first_epoch(12))


def test_tf_dataset_augmented_masks_stay_valid(nails):
    contract = Contract.create(64, 64, ["nail"], "sigmoid", Normalization.named("imagenet"))
    data = make_tf_dataset(nails, contract, batch_size=5, augment="default", shuffle=True,
                           seed=2, num_parallel=2)
    plain = Dataset(nails, contract)
    plain_xs = [plain[i][0] for i in range(NUM_IMAGES)]
    xs, ys = [], []
    for x, y in data.as_numpy_iterator():
        xs.extend(x)
        ys.append(y)
    ys = np.concatenate(ys)
    assert set(np.unique(ys)) <= {0.0, 1.0}
    assert ys[..., 0].sum() > 0
    assert (ys[..., 1] == 0).any(), "exposed borders arrive as ignored (validity 0) pixels"
    assert not (ys[..., 0] * (1 - ys[..., 1])).any()
    unchanged = sum(any(np.array_equal(a, p) for p in plain_xs) for a in xs)
    assert unchanged <= 2, "augmentation should change almost every image"


def test_dataset_with_augmentation_draws_new_views(nails):
    dataset = Dataset(nails, _binary_contract(), build_augmentation("default", seed=0))
    views = [dataset[0] for _ in range(4)]
    assert any(not np.array_equal(views[0][0], v[0]) for v in views[1:])
    for _, y in views:
        assert set(np.unique(y)) <= {0.0, 1.0}


# -- Keras accepts both feeds -----------------------------------------------------------------
def _masked_bce(y_true, y_pred):
    """Binary cross-entropy over valid pixels: how losses use the validity channel."""
    target, valid = y_true[..., :1], y_true[..., 1:]
    loss = tf.keras.losses.binary_crossentropy(target, y_pred)[..., None]
    return tf.reduce_sum(loss * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def test_keras_fits_on_dataloader_and_tf_data(nails):
    contract = _binary_contract()
    inputs = tf.keras.Input(contract.input_shape()[1:])
    outputs = tf.keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(inputs)
    model = tf.keras.Model(inputs, outputs)
    model.compile("adam", _masked_bce)
    loader = Dataloader(Dataset(nails, contract, build_augmentation("default", seed=0)),
                        batch_size=4, shuffle=True, seed=0)
    history = model.fit(loader, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and loader.epoch >= 1  # on_epoch_end ran
    data = make_tf_dataset(nails, contract, 4, augment=True, shuffle=True, seed=0)
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
