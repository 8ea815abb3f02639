"""TensorRT engines inside a bundle: cache key, sidecar JSON, lookup (no TensorRT needed).

An engine is only valid for the exact ONNX, TensorRT version, precision and GPU it was built
with, so those four make its cache key (the workspace size does not change the result's
meaning, only which tactics were tried, so it is left out), and so does its *variant* when
the build was told more: ``--tactic-sources`` (which libraries the engine may load) and, for
FP16, ``--fp32-layers`` (:func:`build_variant`; empty for a plain build, whose key is
unchanged). Every engine
``engines/model-<precision>-<key>.engine`` has a sidecar ``.json`` with the contract (which
records the model.h5 sha256 the engine came from: nanoseg/identity.py), the key fields,
device name, ONNX sha256 and build time. Timing caches make rebuilds fast; TensorRT
rejects one made by another TensorRT version or GPU, so each (TensorRT version, device)
keeps its own ``engines/timing-<key>.cache``.

numpy-free, Python 3.6: runs on the Jetson.
"""
import glob
import hashlib
import json
import os

from nanoseg.bundle import ENGINES_DIR, ONNX, Bundle
from nanoseg.contract import Contract
from nanoseg.files import sha256_file, write_bytes_atomic, write_text_atomic  # noqa: F401 (build_engine writes through here)
from nanoseg.errors import NanosegError
from nanoseg.identity import check_same_model

ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"
TIMING_CACHE_PREFIX = "timing-"
TIMING_CACHE_SUFFIX = ".cache"
SIDECAR_FORMAT = "nanoseg-engine"
PRECISIONS = ("fp16", "fp32")
KEY_FIELDS = ("onnx_sha256", "tensorrt_version", "precision", "device")


def build_variant(precision, tactic_sources="", fp32_layers=()):
    """``tactics=-cublas,-cublaslt;fp32-layers=auto`` - what a build was told beyond the
    defaults, '' for none (FP32 layers only mean something in an FP16 engine)."""
    parts = []
    if tactic_sources:
        parts.append("tactics=" + tactic_sources)
    if fp32_layers and precision == "fp16":
        parts.append("fp32-layers=" + ",".join(fp32_layers))
    return ";".join(parts)


def engine_key(onnx_sha256, tensorrt_version, precision, device, variant=""):
    """16 hex digits identifying what an engine was built from and for."""
    if precision not in PRECISIONS:
        raise NanosegError("engine precision must be one of {}, got {!r}".format(
            PRECISIONS, precision))
    fields = [str(onnx_sha256), str(tensorrt_version), precision, str(device)]
    text = json.dumps(fields + [variant] if variant else fields)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def engine_path(bundle, key, precision):
    """Where the engine with this key lives in the bundle."""
    return os.path.join(Bundle(bundle.root if isinstance(bundle, Bundle) else bundle).path(
        ENGINES_DIR), "model-{}-{}{}".format(precision, key, ENGINE_SUFFIX))


def sidecar_path(engine_file):
    """The sidecar JSON beside an engine file."""
    return engine_file[:-len(ENGINE_SUFFIX)] + SIDECAR_SUFFIX \
        if engine_file.endswith(ENGINE_SUFFIX) else engine_file + SIDECAR_SUFFIX


def timing_cache_key(tensorrt_version, device):
    """16 hex digits for a timing cache: the TensorRT version and the GPU that timed it."""
    text = json.dumps(["timing-cache", str(tensorrt_version), str(device)])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def timing_cache_path(bundle, tensorrt_version, device):
    """``engines/timing-<key>.cache`` for this TensorRT version and device."""
    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    return os.path.join(bundle.path(ENGINES_DIR), "{}{}{}".format(
        TIMING_CACHE_PREFIX, timing_cache_key(tensorrt_version, device), TIMING_CACHE_SUFFIX))


def make_sidecar(contract, onnx_sha256, tensorrt_version, precision, device,
                 build_seconds=None, workspace_mib=None, onnx_name=ONNX, variant="",
                 **build_facts):
    """The sidecar dict: everything needed to trust (or reject) an engine later;
    ``build_facts`` (tactic sources, FP32 layers, memory figures) are recorded as given."""
    sidecar = dict(build_facts)
    sidecar.update({
        "format": SIDECAR_FORMAT,
        "key": engine_key(onnx_sha256, tensorrt_version, precision, device, variant),
        "variant": variant,
        "onnx": onnx_name,
        "onnx_sha256": str(onnx_sha256),
        "tensorrt_version": str(tensorrt_version),
        "precision": precision,
        "device": str(device),
        "build_seconds": None if build_seconds is None else round(float(build_seconds), 2),
        "workspace_mib": workspace_mib,
        "contract": contract.to_dict(),
    })
    return sidecar


def write_sidecar(engine_file, sidecar):
    """Write the sidecar JSON atomically beside ``engine_file``."""
    path = sidecar_path(engine_file)
    write_text_atomic(path, json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return path


def read_sidecar(engine_file):
    """The sidecar dict of an engine, checked for the key fields; NanosegError if bad."""
    path = sidecar_path(engine_file)
    if not os.path.isfile(path):
        raise NanosegError("engine {} has no sidecar {}: rebuild it with "
                           "convert/build_engine.py --force".format(engine_file, path))
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except ValueError as exc:
        raise NanosegError("engine sidecar {} is not valid JSON ({}): rebuild with "
                           "convert/build_engine.py --force".format(path, exc))
    missing = [k for k in KEY_FIELDS + ("format", "contract") if k not in data]
    if data.get("format") != SIDECAR_FORMAT or missing:
        raise NanosegError("engine sidecar {} is not a nanoseg engine sidecar (missing {}): "
                           "rebuild with convert/build_engine.py --force".format(
                               path, ", ".join(missing) or "format"))
    return data


def sidecar_contract(sidecar, source="engine sidecar"):
    return Contract.from_dict(sidecar["contract"], source=source)


def check_engine_contract(sidecar, bundle_contract, engine_file="engine", bundle=None):
    """Raise unless the engine was built from the bundle's model: the same contract, and
    the same model.h5 sha256 (nanoseg/identity.py) when both record one."""
    engine_contract = sidecar_contract(sidecar, engine_file)
    bundle_contract.check_compatible(engine_contract,
                                     "engine {}".format(os.path.basename(engine_file)))
    where = Bundle(bundle) if bundle is not None and not isinstance(bundle, Bundle) else bundle
    check_same_model(
        bundle_contract, engine_contract, "engine {}".format(engine_file),
        where.contract_path if where else "the bundle's contract.json",
        "rebuild it with python3 convert/build_engine.py --bundle {} --force".format(
            where.root if where else "BUNDLE"))


def list_engines(bundle):
    """(engine path, sidecar) pairs in the bundle, newest first; damaged sidecars skipped."""
    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    found = []
    for path in glob.glob(os.path.join(bundle.path(ENGINES_DIR), "*" + ENGINE_SUFFIX)):
        try:
            found.append((path, read_sidecar(path)))
        except NanosegError:
            continue
    found.sort(key=lambda item: os.path.getmtime(item[0]), reverse=True)
    return found


def find_engine(bundle, tensorrt_version=None, device=None, precision=None):
    """The newest engine built from the bundle's current model.onnx (or None).

    Filters on the given TensorRT version / device / precision when known (a Jetson knows
    them; a desktop asking "is there an engine?" may not), and checks the engine's contract
    against the bundle's so an engine from another model is never used.
    """
    bundle = bundle if isinstance(bundle, Bundle) else Bundle(bundle)
    onnx_sha = sha256_file(bundle.path(ONNX)) if bundle.has(ONNX) else None
    wanted = {"tensorrt_version": tensorrt_version, "device": device, "precision": precision,
              "onnx_sha256": onnx_sha}
    contract = bundle.contract()
    for path, sidecar in list_engines(bundle):
        if any(value is not None and str(sidecar.get(key)) != str(value)
               for key, value in wanted.items()):
            continue
        check_engine_contract(sidecar, contract, path, bundle)
        return path
    return None
