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
import functools
import os
import time

import numpy as np

from convert import build_child, build_network
from convert.build_progress import BuildProgress
from edge.tensorrt import engines, compat as trt_compat
from nanoseg import cli, golden, memory
from nanoseg.bundle import ENGINES_DIR, GOLDEN_NPZ, ONNX, ONNX_CONTRACT, Bundle
from nanoseg.files import sha256_file
from nanoseg.errors import NanosegError
from nanoseg.identity import check_golden_identity, check_onnx_identity

MIB = build_network.MIB
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


def reusable_engine(bundle, onnx_sha, version, precision, cuda_device, variant="",
                    requested=None):
    """(path, sidecar) of a cached engine for exactly this key, or None (-> build).

    A missing, damaged or foreign sidecar means "rebuild" (said in one line), never "use
    the engine anyway": the sidecar is what vouches for the engine. ``requested``: only an
    engine whose build asked for that precision (an FP32 engine stands in for FP16 only
    when its build found no fast FP16 on this GPU).
    """
    key = engines.engine_key(onnx_sha, version, precision, cuda_device, variant)
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
    if requested and sidecar.get("requested_precision", precision) != requested:
        return None
    engines.check_engine_contract(sidecar, bundle.contract(), path, bundle)
    print("reusing {} (same ONNX, TensorRT {}, {}{}, {}); --force rebuilds".format(
        path, version, precision, ", " + variant if variant else "", cuda_device))
    return path, sidecar


def build_in_process(trt, request, progress_every):
    """The build in this process (the Python API, tests): -> (plan, result)."""
    with BuildProgress(progress_every) as progress:
        return build_network.build(trt, request, progress)


def ensure_engine(bundle, onnx_path, onnx_contract, trt, fp32, workspace_mib, force,
                  device=None, options=None, in_child=False, progress_every=30.0):
    """The engine path and sidecar for this bundle on this device; builds only if needed.

    ``device`` is the GPU name (default: asked from pycuda). ``options``:
    ``tactic_sources`` (canonical), ``fp32_layers`` (patterns or ["auto"]),
    ``warned_layers``. A cached engine is looked up first (no TensorRT builder); a build
    runs in a child process when ``in_child`` (the CLI: see convert/build_child.py), and
    decides there whether the GPU has fast FP16 (if not, it builds FP32 and says so).
    """
    options = options or {}
    cuda_device = device or device_name()
    version = trt.__version__
    onnx_sha = sha256_file(onnx_path)
    precision = "fp32" if fp32 else "fp16"
    tactics, fp32_layers = options.get("tactic_sources", ""), options.get("fp32_layers", [])
    variant = engines.build_variant(precision, tactics, fp32_layers)
    if not force:
        found = reusable_engine(bundle, onnx_sha, version, precision, cuda_device, variant)
        if found is None and precision == "fp16":  # built FP32 here before: no fast FP16
            found = reusable_engine(bundle, onnx_sha, version, "fp32", cuda_device,
                                    engines.build_variant("fp32", tactics), requested="fp16")
        if found:
            return found
    request = {"onnx": onnx_path, "fp16": precision == "fp16", "device": cuda_device,
               "workspace_mib": workspace_mib, "tactic_sources": tactics,
               "fp32_layers": list(fp32_layers),
               "warned_layers": list(options.get("warned_layers", ())),
               "timing_cache": engines.timing_cache_path(bundle, version, cuda_device),
               "progress_every": progress_every}
    print("building a {} engine with TensorRT {} on {} (workspace {} MiB{}); a Nano takes "
          "minutes".format(precision, version, cuda_device, workspace_mib,
                           ", " + variant if variant else ""))
    print("memory before the build: {}".format(memory.format_snapshot(memory.snapshot())),
          flush=True)
    start = time.time()
    with stage("parse + build"):
        if in_child:
            engines_dir = bundle.path(ENGINES_DIR)
            if not os.path.isdir(engines_dir):
                os.makedirs(engines_dir)
            plan, result, watch = build_child.build_in_child(request, engines_dir)
            result["peak_rss_mib"] = watch.child_peak_mib or result.get("peak_rss_mib")
            result["lowest_available_mib"] = watch.lowest_mib
        else:
            plan, result = build_in_process(trt, request, progress_every)
    seconds = time.time() - start
    built = result["precision"]
    print("build memory: peak RSS {} MiB, lowest available {} MiB".format(
        _mib(result.get("peak_rss_mib")), _mib(result.get("lowest_available_mib"))))
    variant = engines.build_variant(built, tactics, fp32_layers)
    path = engines.engine_path(bundle, engines.engine_key(onnx_sha, version, built,
                                                          cuda_device, variant), built)
    sidecar = engines.make_sidecar(
        onnx_contract, onnx_sha, version, built, cuda_device, seconds, workspace_mib,
        variant=variant, requested_precision=precision, tactic_sources=tactics,
        fp32_layers=result["fp32_layers"], warned_layers=result["warned_layers"],
        build_peak_rss_mib=result.get("peak_rss_mib"),
        build_lowest_available_mib=result.get("lowest_available_mib"))
    # sidecar first: an engine file never exists without the sidecar that vouches for it
    # (a crash in between leaves a sidecar without an engine: the next run rebuilds)
    engines.write_sidecar(path, sidecar)
    engines.write_bytes_atomic(path, plan)
    print("wrote {} ({:.1f} MiB) + sidecar".format(path, os.path.getsize(path) / float(MIB)))
    return path, sidecar


def _mib(value):
    return "?" if value is None else "{:.0f}".format(value)


def verify(engine_path, bundle, onnx_contract, precision, max_diff, min_agreement,
           reference=None):
    """Engine vs Keras on golden.npz; prints the agreement, raises over the thresholds.

    Runs through edge's TensorRT backend (TrtRunner + layout handling), exactly the path
    the camera runtime takes. ``reference`` is :func:`load_reference`'s result (loaded
    here when not given).
    """
    from edge.tensorrt.backend import TensorRTBackend
    data = reference or load_reference(bundle, onnx_contract)
    before = memory.snapshot()
    backend = TensorRTBackend(bundle, engine_path)
    print(memory.format_change(before, memory.snapshot(), "memory as the engine loaded"))
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
    parser.add_argument("--tactic-sources", default="",
                        help="tactic sources to add (+) or leave out (-) from TensorRT's "
                             "defaults, e.g. --tactic-sources=-cublas,-cublaslt (with '=': "
                             "the value starts with '-'); known: {}".format(
                                 ", ".join(trt_compat.TACTIC_SOURCES)))
    parser.add_argument("--fp32-layers", default="", metavar="PATTERN",
                        help="FP16 engines: keep these layers in FP32 (comma-separated globs "
                             "on the layer names, which are the ONNX node names); 'auto' "
                             "builds plain FP16 and, if it fails the golden check, rebuilds "
                             "with the output head and the layers TensorRT warned about in "
                             "FP32")
    parser.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="seconds between progress lines while the engine builds "
                             "(0: none)")
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


FP16_WAY_OUT = ("; or keep some layers in FP32: --fp32-layers auto (or name them, or build "
                "--fp32)")


def build_and_verify(bundle, onnx_path, onnx_contract, trt, args, options, reference):
    """Build (or reuse) and check the engine; with ``--fp32-layers auto`` an FP16 engine
    that fails the check is rebuilt with its output head and warned-about layers in FP32,
    checked again, and the failed engine removed. -> (path, sidecar)."""
    auto = options["fp32_layers"] == [build_network.AUTO]
    ensure = functools.partial(ensure_engine, bundle, onnx_path, onnx_contract, trt,
                               args.fp32, args.workspace, in_child=True,
                               progress_every=args.progress_every)
    found = None
    if auto and not args.force and _has_auto_engine(bundle, onnx_path, trt, options):
        found = ensure(False, options=options)
    path, sidecar = found or ensure(args.force, options=dict(
        options, fp32_layers=[] if auto else options["fp32_layers"]))
    if args.skip_verify:
        return path, sidecar
    try:
        with stage("verify on golden.npz"):
            verify(path, bundle, onnx_contract, sidecar["precision"], args.max_diff,
                   args.min_agreement, reference)
        return path, sidecar
    except NanosegError as exc:
        if sidecar["precision"] != "fp16" or sidecar.get("fp32_layers"):
            raise
        if not auto:
            raise NanosegError(str(exc) + FP16_WAY_OUT)
        print("the FP16 engine failed its check ({}); rebuilding with its output head and "
              "the layers TensorRT warned about in FP32".format(exc), flush=True)
    failed = path
    path, sidecar = ensure(True, options=dict(options,
                                              warned_layers=sidecar.get("warned_layers", [])))
    with stage("verify on golden.npz"):
        verify(path, bundle, onnx_contract, sidecar["precision"], args.max_diff,
               args.min_agreement, reference)
    print("kept in FP32: {}".format(", ".join(sidecar["fp32_layers"])))
    for stale in (failed, engines.sidecar_path(failed)):  # never picked by the camera
        if os.path.exists(stale):
            os.remove(stale)
    return path, sidecar


def _has_auto_engine(bundle, onnx_path, trt, options):
    """Whether an ``--fp32-layers auto`` engine was built here before (plain FP16 failed)."""
    return any(side.get("variant") == engines.build_variant(
        "fp16", options["tactic_sources"], options["fp32_layers"])
        and side.get("onnx_sha256") == sha256_file(onnx_path)
        and side.get("tensorrt_version") == trt.__version__
        for _path, side in engines.list_engines(bundle))


def main(args):
    cli.setup_logging(args.log_level)
    if args.workspace <= 0:
        raise NanosegError("--workspace must be a positive number of MiB, got {}".format(
            args.workspace))
    with stage("check bundle"):
        bundle, onnx_path, onnx_contract = resolve_inputs(args.bundle)
        reference = None if args.skip_verify else load_reference(bundle, onnx_contract)
        options = {"tactic_sources": trt_compat.parse_tactic_sources(args.tactic_sources),
                   "fp32_layers": [p.strip() for p in args.fp32_layers.split(",")
                                   if p.strip()]}
    trt = trt_compat.import_tensorrt()
    path, _sidecar = build_and_verify(bundle, onnx_path, onnx_contract, trt, args, options,
                                      reference)
    print("engine: {}".format(path))
    print("memory: this process's peak RSS {} MiB; now {}".format(
        _mib(memory.process_memory()[1]), memory.format_snapshot(memory.snapshot())))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main, parse_args))
