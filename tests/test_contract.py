"""nanoseg/contract.py: the contract JSON round-trips, compatibility checks name the field,
and bad contract files give one-line errors.

(What the edge computes from a frame under a contract is checked in tests/test_preprocess.py,
each backbone's normalization in tests/test_backbones.py.)
"""
import json
import os

import pytest

from nanoseg.contract import CONTRACT_FORMAT, Contract, load_contract, save_contract
from nanoseg.errors import NanosegError
from tests.contract_helpers import make_contract, roundtrip
from train.backbones import normalization_for


# -- JSON round-trip -------------------------------------------------------------------------
def test_contract_json_roundtrip(tmp_path):
    contract = Contract.create(
        256, 320, ["car", "pedestrian"], "softmax", normalization_for("vgg16")[0],
        channel_order="BGR", source_ids=[8, 9], colors=[[64, 0, 128], [64, 64, 0]],
        backbone="vgg16", versions={"tensorflow": "2.15.1"},
        artifacts={"model.h5": {"sha256": "0" * 64}})
    path = str(tmp_path / "contract.json")
    save_contract(contract, path)
    loaded = load_contract(path)
    assert loaded == contract
    assert loaded.to_dict() == contract.to_dict()
    assert set(loaded.to_dict()) == {
        "format", "version", "input", "normalization", "interpolation", "classes",
        "ignore_id", "activation", "threshold", "output_channels", "backbone", "versions",
        "artifacts", "extra"}
    with open(path) as handle:
        assert json.load(handle)["format"] == CONTRACT_FORMAT
    assert loaded.normalization.mean == [103.939, 116.779, 123.68]
    assert loaded.channel_order == "BGR" and loaded.output_channels == 3
    assert [c["source_id"] for c in loaded.classes[1:]] == [8, 9]
    assert not os.path.exists(path + ".tmp{}".format(os.getpid()))


@pytest.mark.parametrize("names,message", [
    (["car", "Car"], r"class name 'Car' \(label 2\) repeats 'car' \(label 1\): give each "
                     r"class its own name"),
    (["Background"], r"'Background' \(label 1\) repeats 'background' \(label 0\)"),
], ids=["case", "background"])
def test_classes_with_one_name_are_refused_in_one_line(names, message):
    with pytest.raises(NanosegError, match=message):
        Contract.create(64, 64, names, "softmax", normalization_for("vgg16")[0])


def test_check_compatible_names_the_differing_field():
    contract = make_contract("imagenet", "resnet18")
    contract.check_compatible(roundtrip(contract))
    contract.check_compatible(contract.copy(layout="NCHW"), "ONNX")  # layout may differ
    with pytest.raises(NanosegError, match=r"engine's contract differs .* in threshold"):
        contract.check_compatible(contract.copy(threshold=0.6), "engine")
    with pytest.raises(NanosegError, match="in normalization"):
        contract.check_compatible(make_contract("scale", "resnet18"))
    with pytest.raises(NanosegError, match="channel_order, normalization"):
        contract.check_compatible(make_contract("backbone", "vgg16"))
    with pytest.raises(NanosegError, match="in height, width"):
        contract.check_compatible(make_contract("imagenet", "resnet18", size=(64, 64)))


# -- load_contract: one-line errors --------------------------------------------------------
def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)
    return path


def _good_dict():
    return make_contract("scale", "resnet18").to_dict()


LOAD_ERROR_CASES = [
    ("missing", None, "contract not found: .*missing.json"),
    ("bad_json", "{not json", "bad_json.json is not valid JSON"),
    ("not_contract", json.dumps({"format": "onnx"}), "not a nanoseg contract"),
    ("wrong_version", json.dumps(dict(_good_dict(), version=99)), "contract version 99"),
    ("no_input", json.dumps({k: v for k, v in _good_dict().items() if k != "input"}),
     "lacks the field 'input'"),
    ("bad_activation", json.dumps(dict(_good_dict(), activation="relu")),
     "activation must be sigmoid or softmax"),
    ("text_height", json.dumps(dict(_good_dict(), input=dict(_good_dict()["input"],
                                                            height="abc"))),
     "has a field of the wrong type"),
    ("null_classes", json.dumps(dict(_good_dict(), classes=None)),
     "has a field of the wrong type"),
    ("null_threshold", json.dumps(dict(_good_dict(), threshold=None)),
     "has a field of the wrong type"),
    ("class_without_color", json.dumps(dict(_good_dict(), classes=[
        {"id": 0, "name": "background", "color": [0, 0, 0]}, {"id": 1, "name": "nail"}])),
     "needs an integer \"id\", a \"name\" and a \"color\""),
    ("linear_masks", json.dumps(dict(_good_dict(), interpolation={"image": "linear",
                                                                  "mask": "linear"})),
     "mask interpolation must be 'nearest'"),
]
# Errors found by validate() name the bad value, not the file (load_contract's caller does).
VALUE_ERRORS = ("bad_activation", "class_without_color", "linear_masks")


@pytest.mark.parametrize("name,text,message", LOAD_ERROR_CASES,
                         ids=[case[0] for case in LOAD_ERROR_CASES])
def test_load_contract_errors_are_one_line(tmp_path, name, text, message):
    path = str(tmp_path / (name + ".json"))
    if text is not None:
        _write(path, text)
    with pytest.raises(NanosegError, match=message) as info:
        load_contract(path)
    assert "\n" not in str(info.value)
    if name not in VALUE_ERRORS:
        assert path in str(info.value)
