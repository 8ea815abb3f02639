"""nanoseg/identity.py on the Jetson's Python 3.6: the model identity in a real exported
ONNX's metadata, read without the onnx package; engines and golden outputs of another model
refused in one line (no TensorRT needed)."""
import os

import pytest

from edge.tensorrt import engines
from edge.tensorrt.backend import TensorRTBackend
from nanoseg import golden
from nanoseg.bundle import GOLDEN_NPZ, MODEL_H5, ONNX, ONNX_FP16, Bundle
from nanoseg.contract import save_contract
from nanoseg.errors import NanosegError
from nanoseg.files import sha256_file
from nanoseg.identity import (check_golden_identity, model_sha256, onnx_contract,
                              onnx_metadata)

OTHER = "0123456789ab" + "c" * 52          # the sha256 of some other model.h5


def _of_model(contract, sha):
    return contract.copy(artifacts={MODEL_H5: {"sha256": sha}})


def test_exported_onnx_and_its_fp16_copy_record_the_bundles_model(exported_bundle):
    bundle = Bundle(exported_bundle)
    sha = model_sha256(bundle.contract())
    assert sha and len(sha) == 64
    for name in (ONNX, ONNX_FP16):
        assert model_sha256(onnx_contract(bundle.path(name))) == sha, name
    assert model_sha256(golden.load_golden(bundle.path(GOLDEN_NPZ))["contract"]) == sha


def test_a_damaged_onnx_is_one_line_naming_it(tmp_path, exported_bundle):
    with open(os.path.join(exported_bundle, ONNX), "rb") as handle:
        head = handle.read(5000)
    cut = str(tmp_path / "cut.onnx")
    with open(cut, "wb") as handle:
        handle.write(head)
    with pytest.raises(NanosegError, match=r"cannot read the metadata of .*cut\.onnx \(the "
                                           r"file is truncated\): re-export it"):
        onnx_contract(cut)
    assert onnx_metadata(b"") == {}


def test_an_engine_of_another_model_is_refused_before_tensorrt(bundle):
    save_contract(_of_model(bundle.contract(), "f" * 64), bundle.contract_path)
    onnx_sha = sha256_file(bundle.path(ONNX))
    key = engines.engine_key(onnx_sha, "8.2.1.8", "fp16", "NVIDIA Tegra X1")
    path = engines.engine_path(bundle, key, "fp16")
    engines.write_bytes_atomic(path, b"\x00plan")
    engines.write_sidecar(path, engines.make_sidecar(
        _of_model(bundle.onnx_contract(), OTHER), onnx_sha, "8.2.1.8", "fp16",
        "NVIDIA Tegra X1"))
    message = (r"^engine {} was made from another model than {} \(model\.h5 sha256 "
               r"0123456789ab\.\.\. vs ffffffffffff\.\.\.\): rebuild it with python3 "
               r"convert/build_engine\.py --bundle {} --force$").format(
                   *(map(_re, (path, bundle.contract_path, bundle.root))))
    with pytest.raises(NanosegError, match=message):
        TensorRTBackend(bundle.root, engine_path=path)
    with pytest.raises(NanosegError, match=message):
        engines.find_engine(bundle)
    # an engine built before nanoseg recorded the model (no sha256) is still accepted
    engines.write_sidecar(path, engines.make_sidecar(
        bundle.onnx_contract().copy(artifacts={}), onnx_sha, "8.2.1.8", "fp16",
        "NVIDIA Tegra X1"))
    assert engines.find_engine(bundle) == path


def test_golden_outputs_of_another_model_are_refused(bundle):
    data = golden.load_golden(bundle.path(GOLDEN_NPZ))
    contract = _of_model(bundle.contract(), "f" * 64)
    check_golden_identity(bundle, contract, data["contract"])     # records none: accepted
    with pytest.raises(NanosegError, match=r"golden\.npz was made from another model than "
                                           r".*contract\.json .*: re-export it with python3 "
                                           r"convert/export_onnx\.py --bundle "):
        check_golden_identity(bundle, contract, _of_model(data["contract"], OTHER))


def _re(text):
    import re
    return re.escape(text)


def test_build_engine_refuses_an_onnx_of_another_model_before_tensorrt(bundle):
    """A model.onnx copied from another bundle (its metadata names the other model.h5),
    beside this bundle's own model.contract.json: refused before a build starts."""
    from convert import build_engine
    from tests.py36.conftest import onnx_standin_bytes
    save_contract(_of_model(bundle.contract(), "f" * 64), bundle.contract_path)
    save_contract(_of_model(bundle.onnx_contract(), "f" * 64),
                  bundle.path("model.contract.json"))
    build_engine.resolve_inputs(bundle.root)                      # the same model: fine
    with open(bundle.path(ONNX), "wb") as handle:
        handle.write(onnx_standin_bytes(_of_model(bundle.onnx_contract(), OTHER)))
    with pytest.raises(NanosegError, match=r"^{} was made from another model than {} .*: "
                                           r"re-export it with python3 convert/export_onnx"
                                           r"\.py --bundle ".format(
                                               _re(bundle.path(ONNX)),
                                               _re(bundle.contract_path))):
        build_engine.resolve_inputs(bundle.root)
