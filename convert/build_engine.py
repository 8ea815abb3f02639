"""Build (or reuse) the bundle's TensorRT engine ON THE JETSON, then check it against Keras.

    python3 convert/build_engine.py --bundle BUNDLE [--workspace 256] [--fp32] [--force]

Parses BUNDLE/model.onnx, builds FP16 when the GPU has fast FP16 (the Nano does), keeps the
timing cache in BUNDLE/engines/, writes the engine atomically with a sidecar JSON (contract,
TensorRT version, precision, device, ONNX sha256, build time) and reuses it next time when
the key (ONNX sha256 + TensorRT version + precision + device) matches. Finally runs the
engine on BUNDLE/golden.npz and fails when it disagrees with Keras beyond the thresholds.

Python 3.6 + tensorrt + numpy + pycuda (JetPack 4.6.x): no TensorFlow, no onnxruntime.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import contextlib
import os
import time

import numpy as np

from edge import cli, engines, golden, trt_compat
from edge.bundle import GOLDEN_NPZ, ONNX, ONNX_CONTRACT, Bundle
from edge.contract import sha256_file
from edge.errors import NanosegError

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
    return bundle, onnx_path, onnx_contract


def thresholds_for(precision, max_diff=None, min_agreement=None):
    """(max |dp|, min agreement, agreement metric) for this precision; flags override."""
    if precision == "fp16":
        return (golden.FP16_MAX_DIFF if max_diff is None else max_diff,
                golden.FP16_MIN_AGREEMENT if min_agreement is None else min_agreement,
                "decisive_agreement")
    return (golden.FP32_MAX_DIFF if max_diff is None else max_diff,
            golden.FP32_MIN_AGREEMENT if min_agreement is None else min_agreement,
            "mask_agreement")


def device_name():
    """The CUDA device's name (part of the engine key: engines do not move between GPUs)."""
    cuda = trt_compat.import_pycuda()
    cuda.init()
    return cuda.Device(0).name()


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


def build_plan(trt, builder, logger, onnx_path, fp16, workspace_mib, cache_path):
    """Parse + build; -> serialized plan bytes. Updates the timing cache file."""
    network, _parser = parse_onnx(trt, builder, logger, onnx_path)
    config = builder.create_builder_config()
    trt_compat.set_workspace(config, workspace_mib * MIB, trt)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    cached = b""
    if os.path.isfile(cache_path):
        with open(cache_path, "rb") as handle:
            cached = handle.read()
    trt_compat.load_timing_cache(config, cached)
    plan = trt_compat.build_serialized(builder, network, config)
    if plan is None:
        raise NanosegError(
            "TensorRT could not build {} (its log above names the layer): on a Nano this is "
            "usually the workspace (--workspace {} MiB) or memory running out - try "
            "--workspace 512, close other programs (the GUI: sudo systemctl isolate "
            "multi-user.target), or add swap".format(onnx_path, workspace_mib))
    cache = trt_compat.serialize_timing_cache(config)
    if cache:
        engines.write_bytes_atomic(cache_path, cache)
    return plan


def ensure_engine(bundle, onnx_path, onnx_contract, trt, fp32, workspace_mib, force):
    """The engine path and sidecar for this bundle on this device; builds only if needed."""
    cuda_device = device_name()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    fp16 = not fp32 and trt_compat.platform_has_fast_fp16(builder)
    precision = "fp16" if fp16 else "fp32"
    onnx_sha = sha256_file(onnx_path)
    key = engines.engine_key(onnx_sha, trt.__version__, precision, cuda_device)
    path = engines.engine_path(bundle, key, precision)
    if os.path.isfile(path) and not force:
        sidecar = engines.read_sidecar(path)
        engines.check_engine_contract(sidecar, bundle.contract(), path)
        print("reusing {} (same ONNX, TensorRT {}, {}, {}); --force rebuilds".format(
            path, trt.__version__, precision, cuda_device))
        return path, sidecar
    print("building a {} engine with TensorRT {} on {} (workspace {} MiB); a Nano takes "
          "minutes".format(precision, trt.__version__, cuda_device, workspace_mib))
    start = time.time()
    with stage("parse + build"):
        plan = build_plan(trt, builder, logger, onnx_path, fp16, workspace_mib,
                          engines.timing_cache_path(bundle))
    seconds = time.time() - start
    engines.write_bytes_atomic(path, plan)
    sidecar = engines.make_sidecar(onnx_contract, onnx_sha, trt.__version__, precision,
                                   cuda_device, seconds, workspace_mib)
    engines.write_sidecar(path, sidecar)
    print("wrote {} ({:.1f} MiB) + sidecar".format(path, os.path.getsize(path) / float(MIB)))
    return path, sidecar


def verify(engine_path, bundle, onnx_contract, precision, max_diff, min_agreement):
    """Engine vs Keras on golden.npz; prints the agreement, raises over the thresholds.

    Runs through edge's TensorRT backend (TrtRunner + layout handling), exactly the path
    the camera runtime takes.
    """
    from edge.backends import TensorRTBackend
    data = golden.load_golden(bundle.require(GOLDEN_NPZ, "convert/export_onnx.py writes it"))
    onnx_contract.check_compatible(data["contract"], GOLDEN_NPZ)
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
                            golden.FP16_MAX_DIFF, golden.FP32_MAX_DIFF))
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
    trt = trt_compat.import_tensorrt()
    path, sidecar = ensure_engine(bundle, onnx_path, onnx_contract, trt, args.fp32,
                                  args.workspace, args.force)
    if not args.skip_verify:
        with stage("verify on golden.npz"):
            verify(path, bundle, onnx_contract, sidecar["precision"], args.max_diff,
                   args.min_agreement)
    print("engine: {}".format(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main, parse_args))
