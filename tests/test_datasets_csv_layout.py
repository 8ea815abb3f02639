"""The csv layout: manifest styles (split column, train flag, headerless, one CSV per split)
and the nail tutorial's csv_file/ CSVs naming bare files under <split>/images."""
import os
import shutil

import numpy as np
import pytest

from nanoseg.datasets import open_dataset
from tests.dataset_helpers import nested_nails, tutorial, write_csv  # noqa: F401,F811 (fixtures)


def _rows(dataset_root, originals, relative_to):
    """(image, mask, split) rows of the nested copy; every 4th is 'valid'."""
    rows = []
    for position, name in enumerate(sorted(originals)):
        group, stem = name.split("/")
        image = [f for f in os.listdir(os.path.join(dataset_root, "Images", group))
                 if f.startswith(stem)][0]
        mask = [f for f in os.listdir(os.path.join(dataset_root, "Masks", group))
                if f.startswith(stem)][0]
        rows.append((os.path.relpath(os.path.join(dataset_root, "Images", group, image),
                                     relative_to),
                     os.path.relpath(os.path.join(dataset_root, "Masks", group, mask),
                                     relative_to),
                     "valid" if position % 4 == 0 else "train"))
    return rows


@pytest.mark.parametrize("style", ["split_column", "train_flag_column", "headerless",
                                   "one_csv_per_split"])
def test_csv_manifest_styles(nested_nails, tmp_path, style):
    root, originals = nested_nails
    folder = str(tmp_path)
    rows = _rows(root, originals, folder)
    if style == "split_column":
        write_csv(os.path.join(folder, "data.csv"), ["images", "masks", "split"], rows)
    elif style == "train_flag_column":
        write_csv(os.path.join(folder, "data.csv"), ["images", "masks", "train"],
                   [(i, m, 0 if s == "valid" else 1) for i, m, s in rows])
    elif style == "headerless":
        write_csv(os.path.join(folder, "data.csv"), None, rows)
    else:
        write_csv(os.path.join(folder, "train.csv"), ["images", "masks"],
                   [(i, m) for i, m, s in rows if s == "train"])
        write_csv(os.path.join(folder, "valid.csv"), ["images", "masks"],
                   [(i, m) for i, m, s in rows if s == "valid"])
    target = folder if style == "one_csv_per_split" else os.path.join(folder, "data.csv")
    train = open_dataset(target, "csv", split="train", classes=["nail"])
    val = open_dataset(target, "csv", split="val", classes=["nail"])
    want_val = sorted(os.path.normpath(os.path.join(folder, i)) for i, _, s in rows
                      if s == "valid")
    assert sorted(s.image_path for s in val.samples) == want_val
    assert len(train) + len(val) == len(rows) == 8
    _, labels = val.load(0)
    assert set(np.unique(labels).tolist()) <= {0, 1} and labels.max() == 1


def test_per_split_csv_names_its_folder_and_val_works_as_a_split(tutorial, nails_dir,
                                                                 tmp_path):
    """A labelled test/ split listed by csv_file/test.csv with train=0 (make_csv_file's flag
    for "not training"), and val/ instead of valid/."""
    root, chosen = tutorial
    copy = str(tmp_path / "copy")
    shutil.copytree(root, copy)
    os.rename(os.path.join(copy, "valid"), os.path.join(copy, "val"))
    used = chosen["train"] + chosen["valid"]
    test_names = [n for n in sorted(os.listdir(os.path.join(nails_dir, "images")))
                  if n not in used][:2]
    for kind, source in (("images", "images"), ("masks", "labels")):
        os.makedirs(os.path.join(copy, "test", kind))
        for name in test_names:
            shutil.copy(os.path.join(nails_dir, source, name),
                        os.path.join(copy, "test", kind, name))
    with open(os.path.join(copy, "csv_file", "test.csv"), "w", newline="") as handle:
        handle.write("images,train\n" + "".join(n + ",0\n" for n in test_names))
    for layout in ("csv", "flat"):
        tested = open_dataset(copy, layout, split="test", classes=["nail"])
        assert [s.image_path for s in tested.samples] == [
            os.path.join(copy, "test", "images", n) for n in test_names]
        assert tested.load(1)[1].max() == 1
        val = open_dataset(copy, layout, split="val", classes=["nail"])
        assert [s.image_path for s in val.samples] == [
            os.path.join(copy, "val", "images", n) for n in chosen["valid"]]
