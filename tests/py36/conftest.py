"""Fixtures for tests that must also pass under the Jetson's Python 3.6.

These tests import only numpy, cv2, onnxruntime, pytest and edge.*. Under the desktop
suite they get the session's exported bundle; under Python 3.6 (run by
tests/test_python36.py) the bundle is made by the desktop process and passed in
NANOSEG_TEST_BUNDLE, because there is no TensorFlow to train one.
"""
import os
import sys

import pytest


@pytest.fixture(scope="session")
def exported_bundle(request):
    path = os.environ.get("NANOSEG_TEST_BUNDLE")
    if path:
        return path
    if sys.version_info < (3, 9):
        pytest.skip("NANOSEG_TEST_BUNDLE is not set: under Python 3.6 these tests are run "
                    "by tests/test_python36.py with a bundle the desktop suite exported")
    return request.getfixturevalue("exported_nails_bundle")


@pytest.fixture
def bundle(tmp_path):
    """A bundle as export leaves it, made from arrays (no model, no TensorFlow): contracts
    (64x96 sigmoid, NCHW ONNX), a stand-in ONNX (metadata only), golden.npz. Modules with a bundle of
    their own (test_edge_runtime.py) override this fixture."""
    import numpy as np
    from nanoseg import golden
    from nanoseg.bundle import GOLDEN_NPZ, ONNX, ONNX_CONTRACT, Bundle
    from nanoseg.contract import Contract, save_contract
    from nanoseg.normalization import Normalization
    root = str(tmp_path / "bundle")
    os.makedirs(root)
    contract = Contract.create(64, 96, ["nail"], "sigmoid", Normalization.named("imagenet"))
    save_contract(contract, os.path.join(root, "contract.json"))
    save_contract(contract.copy(layout="NCHW"), os.path.join(root, ONNX_CONTRACT))
    with open(os.path.join(root, ONNX), "wb") as handle:
        handle.write(onnx_standin_bytes(contract.copy(layout="NCHW")))
    probs = np.random.RandomState(0).rand(2, 64, 96, 1).astype(np.float32)
    golden.save_golden(os.path.join(root, GOLDEN_NPZ), np.zeros((2, 64, 96, 3), np.float32),
                       probs, ["a", "b"], contract)
    return Bundle(root)


def onnx_standin_bytes(contract):
    """A serialized ONNX ModelProto holding only what export embeds in the metadata (the
    contract, key nanoseg_contract): what nanoseg reads from an ONNX without onnxruntime
    or TensorRT, written without the onnx package (protobuf wire format by hand)."""
    def varint(value):
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                return bytes(out)

    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    entry = field(1, b"nanoseg_contract") + field(2, contract.to_json().encode("utf-8"))
    return varint(1 << 3) + varint(7) + field(14, entry)     # ir_version 7, metadata_props
