"""Build (or reuse) the bundle's TensorRT engine ON THE JETSON, then check it against Keras.

    python3 convert/build_engine.py --bundle BUNDLE [--workspace 256] [--fp32] [--force]

Checks the bundle (and golden.npz, unless --skip-verify) before anything slow, parses
BUNDLE/model.onnx, builds FP16 when the GPU has fast FP16 (the Nano does), keeps a timing
cache per TensorRT version + GPU in BUNDLE/engines/, writes the sidecar JSON (contract,
TensorRT version, precision, device, ONNX sha256, build time) and then the engine, both
atomically, and reuses the engine next time when the key (ONNX sha256 + TensorRT version +
precision + device) matches and its sidecar vouches for it. Finally runs the engine on
BUNDLE/golden.npz and fails when it disagrees with Keras beyond the thresholds.

Python 3.6 + tensorrt + numpy + pycuda (JetPack 4.6.x): no TensorFlow, no onnxruntime.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import contextlib
import os
import time

import numpy as np

from edge.tensorrt import engines, compat as trt_compat
from nanoseg import cli, golden
from nanoseg.bundle import GOLDEN_NPZ, ONNX, ONNX_CONTRACT, Bundle
from nanoseg.files import sha256_file
from nanoseg.errors import NanosegError
from nanoseg.identity import check_golden_identity, check_onnx_identity

MIB = 1 << 20
DEFAULT_WORKSPACE_MIB = 256  # the Nano's 4 GB are shared by CPU and GPU


@contextlib.contextmanager
def stage(name):
    """Print what a stage does and how long it took (the user watches a slow Nano)."""
    print("[{}] ...".format(name), flush=True)
    start = time.time()
    yield
    print("[{}] done in {:.1f} s".format(name, time.time() - start), flush=True)


def resolve_inputs(bundle_dir):
    """Check the bundle has what a build needs; -> (bundle, onnx path, ONNX contract).

    Everything here is checked before TensorRT is touched, so a wrong path says so in one
    line on any machine.
    """
    bundle = Bundle(bundle_dir)
    onnx_path = bundle.require(ONNX, "export it on the desktop with convert/export_onnx.py "
                                     "--bundle {} and copy the bundle".format(bundle.root))
    contract = bundle.contract()
    onnx_contract = bundle.onnx_contract()
    contract.check_compatible(onnx_contract, ONNX_CONTRACT)
    # the engine's sidecar copies onnx_contract: it must name the model this ONNX came from
    check_onnx_identity(bundle, contract, onnx_path, onnx_contract)
    return bundle, onnx_path, onnx_contract


def thresholds_for(precision, max_diff=None, min_agreement=None):
    """(max |dp|, min agreement, agreement metric) for an engine of this precision.

    FP16: golden.FP16_MAX_DIFF on the decisive agreement (pixels away from the boundary);
    FP32: golden.TRT_FP32_MAX_DIFF - TensorRT's own FP32 bound, not ONNX Runtime's (see
    nanoseg/golden.py) - on the raw mask agreement. ``max_diff``/``min_agreement`` (the
    --max-diff/--min-agreement flags) override.
    """
    if precision == "fp16":
        return (golden.FP16_MAX_DIFF if max_diff is None else max_diff,
                golden.FP16_MIN_AGREEMENT if min_agreement is None else min_agreement,
                "decisive_agreement")
    return (golden.TRT_FP32_MAX_DIFF if max_diff is None else max_diff,
            golden.FP32_MIN_AGREEMENT if min_agreement is None else min_agreement,
            "mask_agreement")


def load_reference(bundle, onnx_contract):
    """golden.npz, checked against the ONNX contract: before a build that takes minutes."""
    data = golden.load_golden(bundle.require(
        GOLDEN_NPZ, "convert/export_onnx.py writes it (or build with --skip-verify)"))
    onnx_contract.check_compatible(data["contract"], GOLDEN_NPZ)
    check_golden_identity(bundle, bundle.contract(), data["contract"])
    return data


def device_name():
    """The CUDA device's name (part of the engine key: engines do not move between GPUs)."""
    return trt_compat.cuda_device(trt_compat.import_pycuda(), 0).name()


def parse_onnx(trt, builder, logger, onnx_path):
    """A network filled by the ONNX parser; a failure names the node and the fix."""
    network = trt_compat.create_network(builder, trt)
    parser = trt.OnnxParser(network, logger)
    with open(onnx_path, "rb") as handle:
        ok = parser.parse(handle.read())
    if not ok:
        errors = trt_compat.parser_errors(parser)
        raise NanosegError("TensorRT {} cannot parse {}: {}; run convert/check_onnx.py on it "
                           "on the desktop and re-export with convert/export_onnx.py "
                           "(opset 13)".format(trt.__version__, onnx_path,
                                               " | ".join(errors) or "no detail given"))
    return network, parser


CACHE_MESSAGES = {
    trt_compat.CACHE_LOADED: "timing cache: reusing {path} ({size} bytes)",
    trt_compat.CACHE_FRESH: "timing cache: none yet for this TensorRT + GPU, will write {path}",
    trt_compat.CACHE_REJECTED: "timing cache: {path} was rejected (stale: another TensorRT "
                               "build or GPU), timing from scratch and replacing it",
    trt_compat.CACHE_UNSUPPORTED: "timing cache: not supported by this TensorRT",
}


def build_plan(trt, builder, logger, onnx_path, fp16, workspace_mib, cache_path):
    """Parse + build; -> serialized plan bytes. Updates the timing cache file."""
    network, _parser = parse_onnx(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    trt_compat.set_workspace(config, workspace_mib * MIB, trt)
    trt_compat.set_precision(config, fp16, trt)
    cached = b""
    if os.path.isfile(cache_path):
        with open(cache_path, "rb") as handle:
            cached = handle.read()
    status = trt_compat.load_timing_cache(config, cached)
    print(CACHE_MESSAGES[status].format(path=cache_path, size=len(cached)), flush=True)
    plan = trt_compat.build_serialized(builder, network, config)
    if plan is None:
        raise NanosegError(
            "TensorRT could not build {} (its log above names the layer): on a Nano this is "
            "usually memory running out (CPU and GPU share 4 GB; --workspace {} MiB) - try "
            "a smaller --workspace {}, close other programs (the GUI: sudo systemctl "
            "isolate multi-user.target), or add swap".format(
                onnx_path, workspace_mib, max(workspace_mib // 2, 1)))
    cache = trt_compat.serialize_timing_cache(config)
    if cache:
        engines.write_bytes_atomic(cache_path, cache)
    return plan


def reusable_engine(bundle, onnx_sha, version, precision, cuda_device):
    """(path, sidecar) of a cached engine for exactly this key, or None (-> build).

    A missing, damaged or foreign sidecar means "rebuild" (said in one line), never "use
    the engine anyway": the sidecar is what vouches for the engine.
    """
    key = engines.engine_key(onnx_sha, version, precision, cuda_device)
    path = engines.engine_path(bundle, key, precision)
    if not os.path.isfile(path):
        return None
    try:
        sidecar = engines.read_sidecar(path)
    except NanosegError as exc:  # its message ends in "rebuild ... --force": we do that
        print("not reusing {}: {}; rebuilding".format(path, str(exc).split(": rebuild")[0]))
        return None
    if sidecar.get("key") != key:
        print("not reusing {}: its sidecar describes another build (key {}); "
              "rebuilding".format(path, sidecar.get("key")))
        return None
    engines.check_engine_contract(sidecar, bundle.contract(), path, bundle)
    print("reusing {} (same ONNX, TensorRT {}, {}, {}); --force rebuilds".format(
        path, version, precision, cuda_device))
    return path, sidecar


def ensure_engine(bundle, onnx_path, onnx_contract, trt, fp32, workspace_mib, force,
                  device=None):
    """The engine path and sidecar for this bundle on this device; builds only if needed.

    ``device`` is the GPU name (default: asked from pycuda). A cached engine is looked up
    under the requested precision first, so reusing one creates no TensorRT builder; only
    a build (or a GPU without fast FP16, which gets FP32) asks the builder.
    """
    cuda_device = device or device_name()
    version = trt.__version__
    onnx_sha = sha256_file(onnx_path)
    precision = "fp32" if fp32 else "fp16"
    found = None if force else reusable_engine(bundle, onnx_sha, version, precision,
                                               cuda_device)
    if found:
        return found
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    slow_fp16 = None
    if precision == "fp16" and not trt_compat.has_fp16_flag(trt):
        slow_fp16 = ("TensorRT {} has no FP16 builder flag (its networks take their precision "
                     "from the ONNX, here float32)".format(version))
    elif precision == "fp16" and not trt_compat.platform_has_fast_fp16(builder):
        slow_fp16 = "{} reports no fast FP16".format(cuda_device)
    if slow_fp16:
        print("{}: using FP32".format(slow_fp16))
        precision = "fp32"
        found = None if force else reusable_engine(bundle, onnx_sha, version, precision,
                                                   cuda_device)
        if found:
            return found
    path = engines.engine_path(bundle, engines.engine_key(onnx_sha, version, precision,
                                                          cuda_device), precision)
    print("building a {} engine with TensorRT {} on {} (workspace {} MiB); a Nano takes "
          "minutes".format(precision, version, cuda_device, workspace_mib))
    start = time.time()
    with stage("parse + build"):
        plan = build_plan(trt, builder, logger, onnx_path, precision == "fp16",
                          workspace_mib, engines.timing_cache_path(bundle, version,
                                                                   cuda_device))
    seconds = time.time() - start
    sidecar = engines.make_sidecar(onnx_contract, onnx_sha, version, precision,
                                   cuda_device, seconds, workspace_mib)
    # sidecar first: an engine file never exists without the sidecar that vouches for it
    # (a crash in between leaves a sidecar without an engine: the next run rebuilds)
    engines.write_sidecar(path, sidecar)
    engines.write_bytes_atomic(path, plan)
    print("wrote {} ({:.1f} MiB) + sidecar".format(path, os.path.getsize(path) / float(MIB)))
    return path, sidecar


def verify(engine_path, bundle, onnx_contract, precision, max_diff, min_agreement,
           reference=None):
    """Engine vs Keras on golden.npz; prints the agreement, raises over the thresholds.

    Runs through edge's TensorRT backend (TrtRunner + layout handling), exactly the path
    the camera runtime takes. ``reference`` is :func:`load_reference`'s result (loaded
    here when not given).
    """
    from edge.tensorrt.backend import TensorRTBackend
    data = reference or load_reference(bundle, onnx_contract)
    backend = TensorRTBackend(bundle, engine_path)
    try:
        probs = np.stack([backend.infer(x) for x in data["inputs"]])
    finally:
        backend.close()
    metrics = golden.compare_probabilities(data["probabilities"], probs, onnx_contract)
    max_diff, min_agreement, key = thresholds_for(precision, max_diff, min_agreement)
    print(golden.format_metrics("{} engine vs Keras".format(precision), metrics))
    golden.check_against_thresholds(metrics, max_diff, min_agreement,
                                    "the {} engine".format(precision), agreement_key=key)
    print("OK: within max |dp| {:g} and {} {:.2%}".format(max_diff, key, min_agreement))
    return metrics


def parse_args(argv=None):
    parser = cli.make_parser("Build (or reuse) the bundle's TensorRT engine on the Jetson "
                             "and check it against the Keras golden outputs.")
    cli.add_bundle_arg(parser)
    parser.add_argument("--workspace", type=int, default=DEFAULT_WORKSPACE_MIB,
                        help="builder workspace in MiB (the Nano's 4 GB are shared)")
    parser.add_argument("--fp32", action="store_true",
                        help="build FP32 even when the GPU has fast FP16")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--skip-verify", action="store_true",
                        help="do not run the engine on golden.npz")
    parser.add_argument("--max-diff", type=float, default=None,
                        help="max |dp| vs Keras (default {} FP16, {} FP32)".format(
                            golden.FP16_MAX_DIFF, golden.TRT_FP32_MAX_DIFF))
    parser.add_argument("--min-agreement", type=float, default=None,
                        help="min label agreement (FP16: on pixels > {} from the threshold; "
                             "default {})".format(golden.DECISIVE_MARGIN,
                                                  golden.FP16_MIN_AGREEMENT))
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    if args.workspace <= 0:
        raise NanosegError("--workspace must be a positive number of MiB, got {}".format(
            args.workspace))
    with stage("check bundle"):
        bundle, onnx_path, onnx_contract = resolve_inputs(args.bundle)
        reference = None if args.skip_verify else load_reference(bundle, onnx_contract)
    trt = trt_compat.import_tensorrt()
    path, sidecar = ensure_engine(bundle, onnx_path, onnx_contract, trt, args.fp32,
                                  args.workspace, args.force)
    if not args.skip_verify:
        with stage("verify on golden.npz"):
            verify(path, bundle, onnx_contract, sidecar["precision"], args.max_diff,
                   args.min_agreement, reference)
    print("engine: {}".format(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main, parse_args))
