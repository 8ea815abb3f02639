"""train/augment.py: the default augmentation keeps labels, marks exposed borders as ignored,
and gives one answer per seed whatever the thread (real nails pairs and random images)."""
import concurrent.futures

import numpy as np
import pytest

from nanoseg.contract import IGNORE_ID
from nanoseg.datasets import open_dataset
from nanoseg.errors import NanosegError
from train.augment import Augmentation, build_augmentation


@pytest.fixture(scope="module")
def nails(nails_dir):
    """Real nails pairs, read by the project's flat reader (noisy JPEG masks -> 0/1)."""
    return open_dataset(nails_dir, "flat", split="all")


def test_augmentation_fills_exposed_border_with_ignore():
    image = np.random.RandomState(1).randint(0, 256, (120, 160, 3)).astype(np.uint8)
    mask = np.ones((120, 160), np.uint8)  # all foreground: any 0 would be fake background
    augmentation = Augmentation("default", seed=0)
    saw_border = 0
    for seed in range(30):
        out_image, out_mask = augmentation(image, mask, seed=seed)
        assert out_image.shape == image.shape and out_image.dtype == np.uint8
        assert out_mask.shape == mask.shape and out_mask.dtype == np.uint8
        assert set(np.unique(out_mask)) <= {1, IGNORE_ID}
        saw_border += int((out_mask == IGNORE_ID).any())
    assert saw_border >= 5, "the affine transform should expose borders in some draws"


def test_augmentation_keeps_labels_and_is_seeded(nails):
    augmentation = build_augmentation("default", seed=0)
    image, mask = nails.load(0)
    changed = 0
    for seed in range(8):
        out_image, out_mask = augmentation(image, mask, seed=seed)
        again_image, again_mask = augmentation(image, mask, seed=seed)
        assert np.array_equal(out_image, again_image) and np.array_equal(out_mask, again_mask)
        assert set(np.unique(out_mask)) <= {0, 1, IGNORE_ID}
        changed += int(not np.array_equal(out_image, image))
    assert changed >= 6
    assert build_augmentation("none") is None
    with pytest.raises(NanosegError, match="unknown augmentation 'heavy'"):
        build_augmentation("heavy")


def test_augmentation_transforms_draw_independently():
    """Reseeding per sample must not make all transforms fire together (albumentations'
    set_random_seed gives every child the same seed): ~4% of draws may be untouched."""
    augmentation = Augmentation("default", seed=0)
    image = np.random.RandomState(2).randint(0, 256, (40, 50, 3)).astype(np.uint8)
    mask = np.zeros((40, 50), np.uint8)
    untouched = sum(np.array_equal(augmentation(image, mask, seed=s)[0], image)
                    for s in range(100))
    assert untouched <= 12


def test_augmentation_is_thread_safe_per_sample_seed(nails):
    """tf.data calls it from many threads: a seed must give one answer whatever the thread."""
    augmentation = Augmentation("default", seed=5)
    image, mask = nails.load(1)
    expected = [augmentation(image, mask, seed=s) for s in range(12)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda s: augmentation(image, mask, seed=s), range(12)))
    for (ei, em), (gi, gm) in zip(expected, got):
        assert np.array_equal(ei, gi) and np.array_equal(em, gm)
