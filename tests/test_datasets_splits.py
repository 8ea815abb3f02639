"""The reproducible split: seeded, order-independent, saved to and read back from a CSV."""
import os

from nanoseg.datasets import open_dataset, splits
from tests.dataset_helpers import nails  # noqa: F401,F811 (fixtures)


def test_split_is_seeded_order_independent_and_disjoint(nails):
    train, val = splits.split_samples(nails.samples, 0.2, seed=5)
    again = splits.split_samples(list(reversed(nails.samples)), 0.2, seed=5)
    assert (train, val) == again
    assert len(val) == 10 and len(train) == 42
    assert not set(train) & set(val)
    _, other_val = splits.split_samples(nails.samples, 0.2, seed=6)
    assert set(other_val) != set(val)


def test_split_csv_round_trip(nails_dir, tmp_path):
    split_csv = str(tmp_path / "sub" / "split.csv")
    train = open_dataset(nails_dir, "flat", split="train", seed=3, split_csv=split_csv)
    assert os.path.isfile(split_csv)
    val = open_dataset(nails_dir, "flat", split="val", seed=3, split_csv=split_csv)
    assert len(train) + len(val) == 52 and not set(train.samples) & set(val.samples)
    # the saved split wins over a different seed: that is what makes it reproducible
    val_again = open_dataset(nails_dir, "flat", split="val", seed=99, split_csv=split_csv)
    assert val_again.samples == val.samples
    # ... and yields the dataset's own samples: names do not depend on where the CSV lives
    assert val.samples == open_dataset(nails_dir, "flat", split="val", seed=3).samples
    fresh = open_dataset(nails_dir, "flat", split="val", seed=99)
    assert set(s.name for s in fresh.samples) != set(s.name for s in val.samples)
    # the split CSV is itself a csv-layout dataset
    as_csv = open_dataset(split_csv, "csv", split="val")
    assert [s.image_path for s in as_csv.samples] == [s.image_path for s in val.samples]
    saved = splits.read_split_csv(split_csv)
    assert sorted(saved) == ["train", "val"] and len(saved["train"]) == len(train)


def test_a_bundles_split_file_relative_to_the_dataset_is_read_from_anywhere(nails_dir,
                                                                            tmp_path):
    """split.csv as training writes it (rows relative to the dataset root) is read from
    another folder with split_root, and as --split-csv FILE without it."""
    everything = open_dataset(nails_dir, "flat", split="all")
    chosen = {"train": everything.samples[5:], "val": everything.samples[:5]}
    split_csv = str(tmp_path / "deep" / "er" / "split.csv")
    splits.write_split_csv(split_csv, chosen, root=nails_dir)
    with open(split_csv) as handle:
        assert handle.read().splitlines()[1].startswith("images/")
    for root in (nails_dir, None):
        val = open_dataset(nails_dir, "flat", split="val", split_csv=split_csv,
                           split_root=root)
        assert val.samples == chosen["val"]
