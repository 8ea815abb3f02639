"""Model identity: which trained model an artifact was made from, defined once.

A model's identity is the sha256 of its ``model.h5``, which training records in the
bundle's ``contract.json`` (``artifacts["model.h5"]["sha256"]``). Every artifact made from
the model carries a copy of that contract, so it records the same sha256: ``model.onnx`` and
``model_fp16.onnx`` in their ONNX metadata (key :data:`ONNX_METADATA_KEY`),
``model.contract.json``, ``golden.npz`` (its ``contract`` entry) and each engine's sidecar.
An artifact whose sha256 differs from the bundle's was made from another model (copied from
another bundle, or left over from before a retraining) and is refused in one line.

An artifact or a bundle that records no sha256 (made before nanoseg recorded it) has
nothing to compare and is accepted as before.

The ONNX metadata is read with a small protobuf reader (below), so the Jetson checks an
ONNX without the onnx package. numpy-free, Python 3.6.
"""
import json

from nanoseg.bundle import GOLDEN_NPZ, MODEL_H5, ONNX_CONTRACT
from nanoseg.contract import Contract
from nanoseg.errors import NanosegError

ONNX_METADATA_KEY = "nanoseg_contract"
_METADATA_PROPS = 14          # ModelProto.metadata_props (onnx.proto)
_SHOWN = 12                   # hex digits of a sha256 shown in messages


def model_sha256(contract):
    """The sha256 of the model.h5 a contract was made from, or None when it records none."""
    entry = (contract.artifacts or {}).get(MODEL_H5)
    sha = entry.get("sha256") if isinstance(entry, dict) else None
    return str(sha) if sha else None


def check_same_model(bundle_contract, artifact_contract, artifact, reference, fix):
    """One line naming ``artifact``, ``reference`` and ``fix`` unless both record the same
    model (or one of them records none)."""
    mine, theirs = model_sha256(bundle_contract), model_sha256(artifact_contract)
    if mine is None or theirs is None or mine == theirs:
        return
    raise NanosegError("{} was made from another model than {} (model.h5 sha256 {}... vs "
                       "{}...): {}".format(artifact, reference, theirs[:_SHOWN],
                                           mine[:_SHOWN], fix))


def check_onnx_identity(bundle, contract, path, file_contract=None):
    """Refuse an ONNX (or its model.contract.json) made from another model than the
    bundle's model.h5: the contract in the ONNX's own metadata is what counts, since a
    model.onnx copied from another bundle comes without its model.contract.json."""
    fix = reexport_hint(bundle)
    embedded = onnx_contract(path)
    if embedded is not None:
        check_same_model(contract, embedded, path, bundle.contract_path, fix)
    if file_contract is not None:
        check_same_model(contract, file_contract, bundle.path(ONNX_CONTRACT),
                         bundle.contract_path, fix)
    return embedded


def reexport_hint(bundle):
    """The fix for an export artifact (ONNX, FP16 copy, golden.npz) of another model."""
    return "re-export it with python3 convert/export_onnx.py --bundle " + bundle.root


def check_golden_identity(bundle, contract, golden_contract):
    """Refuse a golden.npz made from another model than the bundle's model.h5."""
    check_same_model(contract, golden_contract, bundle.path(GOLDEN_NPZ),
                     bundle.contract_path, reexport_hint(bundle))


def onnx_contract(path):
    """The contract embedded in an ONNX file's metadata, or None when it has none."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        props = onnx_metadata(data)
    except (OSError, ValueError) as exc:
        raise NanosegError("cannot read the metadata of {} ({}): re-export it with "
                           "convert/export_onnx.py".format(path, exc))
    text = props.get(ONNX_METADATA_KEY)
    if text is None:
        return None
    try:
        return Contract.from_dict(json.loads(text), source="the metadata of " + str(path))
    except ValueError as exc:
        raise NanosegError("the contract in the metadata of {} is damaged ({}): re-export it "
                           "with convert/export_onnx.py".format(path, exc))


def onnx_metadata(data):
    """{key: value} of a serialized ONNX ModelProto's metadata_props (ValueError if bad)."""
    props = {}
    view = memoryview(data)
    for number, wire, value in _fields(view):
        if number == _METADATA_PROPS and wire == 2:
            entry = dict((n, bytes(v).decode("utf-8")) for n, w, v in _fields(value)
                         if w == 2 and n in (1, 2))
            if 1 in entry:
                props[entry[1]] = entry.get(2, "")
    return props


def _fields(view):
    """(field number, wire type, value) of a protobuf message; values of wire type 2 are
    memoryviews (the graph is skipped, not copied)."""
    pos, end = 0, len(view)
    while pos < end:
        key, pos = _varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(view, pos)
        elif wire == 2:
            size, pos = _varint(view, pos)
            value, pos = view[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = view[pos:pos + size], pos + size
        else:
            raise ValueError("not an ONNX model (protobuf wire type {})".format(wire))
        if pos > end:
            raise ValueError("the file is truncated")
        yield number, wire, value


def _varint(view, pos):
    result, shift = 0, 0
    while True:
        if pos >= len(view) or shift > 63:
            raise ValueError("the file is truncated or not an ONNX model")
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
