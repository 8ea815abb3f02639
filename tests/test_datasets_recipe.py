"""The dataset recipe: what a bundle records about its training data, read back to open the
same split again; bundles trained before keep loading."""
import json
import os

import pytest

from nanoseg.contract import Contract, load_contract, save_contract
from nanoseg.datasets import DatasetRecipe, open_dataset, write_split_csv
from nanoseg.errors import NanosegError
from nanoseg.normalization import Normalization

# contract.extra["dataset"] of a bundle trained on nails before the recipe had a class.
STORED = {"classes_arg": ["nail"], "images_dir": None, "layout": "flat", "mask_invert": False,
          "masks_dir": None, "root": "/work/shared/data/nails", "seed": 0,
          "split_csv": "split.csv", "train_images": 42, "val_fraction": 0.2,
          "val_images": 10}


def _contract(extra=None):
    return Contract.create(64, 64, activation="sigmoid", normalization=Normalization.named(
        "scale"), class_names=["nail"], source_ids=[1], colors=None, extra=extra)


def test_a_stored_recipe_round_trips_unchanged():
    recipe = DatasetRecipe.from_dict(json.loads(json.dumps(STORED)))
    assert (recipe.root, recipe.layout, recipe.classes_arg, recipe.seed) == \
        ("/work/shared/data/nails", "flat", ["nail"], 0)
    assert recipe.to_dict() == STORED


def test_the_recipe_is_stored_under_dataset_and_survives_the_contract_file(tmp_path):
    contract = _contract()
    DatasetRecipe.from_dict(STORED).store(contract)
    path = str(tmp_path / "contract.json")
    save_contract(contract, path)
    with open(path) as handle:
        assert json.load(handle)["extra"]["dataset"] == STORED
    assert DatasetRecipe.of(load_contract(path)).to_dict() == STORED


def test_missing_keys_take_defaults_and_unknown_keys_are_kept():
    recipe = DatasetRecipe.from_dict({"root": "/d", "layout": "csv", "note": "kept"})
    assert (recipe.val_fraction, recipe.seed, recipe.mask_invert, recipe.split_csv) == \
        (0.2, 0, False, None)
    assert recipe.to_dict()["note"] == "kept"
    with pytest.raises(TypeError, match="unknown dataset recipe fields"):
        DatasetRecipe(roots="/d")


def test_a_contract_without_a_recipe_asks_for_data_and_layout():
    recipe = DatasetRecipe.of(_contract())
    assert recipe.root is None and recipe.to_dict()["layout"] is None
    with pytest.raises(NanosegError, match="^the bundle does not record its dataset: pass "
                                           "--data and --layout$"):
        recipe.open("val")


def test_open_uses_the_bundles_split_on_the_training_data_only(nails_dir, tmp_path):
    everything = open_dataset(nails_dir, "flat", split="all")
    write_split_csv(str(tmp_path / "split.csv"), {"train": everything.samples[3:],
                                                  "val": everything.samples[:3]})
    recipe = DatasetRecipe.from_dict(dict(STORED, root=nails_dir))
    saved = recipe.open("val", bundle_dir=str(tmp_path))
    assert saved.samples == everything.samples[:3]
    seeded = open_dataset(nails_dir, "flat", split="val", classes=["nail"])
    assert recipe.open("val").samples == seeded.samples                 # no bundle folder
    assert recipe.open("val", data=nails_dir, bundle_dir=str(tmp_path)).samples == \
        seeded.samples                                                  # data named again


def test_open_passes_mask_invert_only_to_layouts_with_binary_masks(camvid_dir):
    recipe = DatasetRecipe.from_dict(dict(STORED, mask_invert=True, images_dir="rgb"))
    dataset = recipe.open("val", data=camvid_dir, layout="camvid", classes=["car"])
    assert dataset.layout == "camvid" and dataset.class_names == ["Car"]
    assert os.path.isdir(dataset.root)
