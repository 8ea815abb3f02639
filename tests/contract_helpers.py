"""Contracts for the contract, preprocessing and backbone tests: one per normalization scheme."""
import json

from nanoseg.contract import Contract
from train.backbones import resolve_normalization

SIZE = (96, 128)  # (H, W): not square, so a swapped width/height cannot pass


def make_contract(normalization_name, backbone, size=SIZE):
    """A one-class sigmoid contract with the normalization ``train.py`` would record."""
    normalization, order = resolve_normalization(normalization_name, backbone)
    return Contract.create(size[0], size[1], ["nail"], "sigmoid", normalization,
                           channel_order=order, backbone=backbone)


def roundtrip(contract):
    """The contract as the edge gets it: serialized to JSON and parsed back."""
    return Contract.from_dict(json.loads(contract.to_json()))
