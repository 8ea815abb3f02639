"""Export a bundle's Keras model to the ONNX TensorRT 8.0/8.2 parses, with golden outputs.

    python3 convert/export_onnx.py --bundle BUNDLE [--data D --layout L --split val]
                                   [--nchw] [--golden 8] [--opset 13]

model.h5 -> SavedModel (static (1,H,W,3) float32 signature) -> tf2onnx (opset 13, batch 1)
-> Resize fix-up for TensorRT 8.0/8.2 -> model.onnx (contract in its metadata and in
model.contract.json) -> convert/check_onnx.py rules -> golden.npz (N real validation images:
preprocessed inputs + Keras probabilities) -> ONNX Runtime and an FP16 copy
(model_fp16.onnx) checked against them -> parity.json. Fails (exit 2) over the thresholds.
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import contextlib
import json
import logging
import os
import shutil
import time
import warnings

import numpy as np

from convert import check_onnx
from nanoseg import bundle as bundle_names
from nanoseg import cli, golden
from nanoseg.bundle import Bundle
from nanoseg.contract import save_contract
from nanoseg.errors import NanosegError
from nanoseg.files import atomic_path, check_writable, write_failure, write_text_atomic
from nanoseg.identity import ONNX_METADATA_KEY
from nanoseg.preprocess import preprocess_image
from train import keras_env
from nanoseg.evaluation import add_dataset_args

LOG = logging.getLogger(__name__)
METADATA_KEY = ONNX_METADATA_KEY    # the contract, with the model.h5 sha256 (identity)
INPUT_NAME = "input"
OUTPUT_NAME = "probabilities"
DEFAULT_OPSET = 13


@contextlib.contextmanager
def timed(what):
    """Log what a stage did and how long it took."""
    start = time.time()
    yield
    LOG.info("%s: %.1f s", what, time.time() - start)


# -- Keras -> SavedModel -> ONNX ----------------------------------------------------------
def load_keras(path):
    """model.h5 without segmentation_models (train.model knows the custom objects)."""
    from train.model import load_model_for_inference
    return load_model_for_inference(path)


def write_saved_model(model, contract, directory):
    """A SavedModel whose serving signature is static: (1,H,W,3) float32 -> probabilities.

    A static signature keeps tf2onnx from emitting Shape/Slice/Cast chains for dynamic
    sizes, which TensorRT 8.0 handles badly (and the edge runs batch 1 anyway).
    """
    import tensorflow as tf
    spec = tf.TensorSpec((1, contract.height, contract.width, 3), tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(x):
        return {OUTPUT_NAME: model(x, training=False)}

    # A plain tf.Module holding just the variables and the signature: saving the Keras model
    # itself would also trace every layer's call for Keras reloading (71 s vs a few here).
    module = tf.Module()
    module.weights = list(model.weights)
    module.serve = serve
    tmp = directory + ".tmp{}".format(os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tf.saved_model.save(module, tmp, signatures={"serving_default": serve})
    except Exception as exc:  # e.g. a full disk: no half-written folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        message = write_failure(exc, directory)
        if message is None:
            raise
        raise NanosegError(message)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


def saved_model_to_onnx(directory, opset=DEFAULT_OPSET, nchw=False):
    """tf2onnx on the SavedModel's serving signature -> ModelProto named input/probabilities."""
    from tf2onnx import convert, tf_loader
    graph_def, inputs, outputs, renames = tf_loader.from_saved_model(
        directory, None, None, tag="serve", signatures=["serving_default"],
        return_tensors_to_rename=True)
    model, _ = convert.from_graph_def(
        graph_def, input_names=inputs, output_names=outputs, opset=opset,
        inputs_as_nchw=list(inputs) if nchw else None, tensors_to_rename=renames)
    return model


def _integer_scales(model, node):
    """The Resize node's scales if they are an initializer of whole numbers >= 1, else None."""
    from onnx import numpy_helper
    if len(node.input) < 3 or not node.input[2]:
        return None
    for init in model.graph.initializer:
        if init.name == node.input[2]:
            scales = numpy_helper.to_array(init).astype(np.float64)
            if scales.size and np.all(scales >= 1) and np.all(scales == np.round(scales)):
                return scales
    return None


def rewrite_nearest_resizes(model):
    """Make tf2onnx's UpSampling2D Resize parse on TensorRT 8.0/8.2; -> rewritten node names.

    tf2onnx writes ``coordinate_transformation_mode=tf_half_pixel_for_nn, nearest_mode=
    floor``; TensorRT 8.0 and 8.2 both reject tf_half_pixel_for_nn unless nearest_mode is
    round_prefer_floor (convert/trt_ops.py), and take asymmetric + floor. For an integer
    scale s and output index x = q*s + r (0 <= r < s): tf_half_pixel_for_nn reads
    floor((x + 0.5) / s) = q + floor((r + 0.5) / s) = q, and asymmetric reads
    floor(x / s) = q: the same source pixel, so the rewrite is exact (the tests check it
    with ONNX Runtime). Non-integer scales are left alone; check_onnx then reports them.
    """
    import onnx
    rewritten = []
    for node in model.graph.node:
        if node.op_type != "Resize":
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("mode", b"nearest") != b"nearest" or attrs.get(
                "coordinate_transformation_mode") != b"tf_half_pixel_for_nn" or \
                attrs.get("nearest_mode", b"round_prefer_floor") != b"floor" or \
                _integer_scales(model, node) is None:
            continue
        for attribute in node.attribute:
            if attribute.name == "coordinate_transformation_mode":
                attribute.s = b"asymmetric"
        rewritten.append(node.name)
    return rewritten


def embed_contract(model, contract):
    """Put the contract JSON in the ONNX metadata (key nanoseg_contract)."""
    import onnx
    props = {p.key: p.value for p in model.metadata_props}
    props[METADATA_KEY] = contract.to_json()
    onnx.helper.set_model_props(model, props)
    return model


def onnx_contract_for(contract, nchw, opset):
    """The bundle's contract with the ONNX's layout and conversion versions."""
    import onnx
    import tf2onnx
    result = contract.copy(layout="NCHW" if nchw else "NHWC")
    result.versions.update({"tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
                            "opset": int(opset)})
    return result


def save_onnx(model, path):
    """Validate with onnx.checker, then write atomically."""
    import onnx
    onnx.checker.check_model(model)
    with atomic_path(path) as tmp:
        onnx.save(model, tmp)
    return path


def fp16_copy(model):
    """FP16 weights/compute with float32 I/O: the CPU proxy for an FP16 TensorRT engine."""
    from onnxconverter_common import float16
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        converted = float16.convert_float_to_float16(model, keep_io_types=True)
    truncated = [w for w in caught if "will be truncated" in str(w.message)]
    for other in caught:
        if other not in truncated:
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    if truncated:
        # One line instead of one warning per weight: FP16 cannot hold |x| < 1e-7 (nor
        # > 65504), so the converter clamps such weights; the parity check measures the effect.
        LOG.info("FP16 copy: %d float32 constant(s) outside FP16's range were clamped",
                 len(truncated))
    return converted


# -- golden outputs -----------------------------------------------------------------------
def load_golden_images(contract, data=None, layout=None, split="val", count=8, classes=None,
                       bundle_dir=None):
    """[(name, RGB uint8)]: ``count`` images spread evenly over the split.

    The dataset defaults to the one training recorded in the contract (nanoseg.evaluation's
    dataset_for: same root, layout, classes and the split saved in ``bundle_dir``'s split.csv),
    so golden images are validation images the model never trained on.
    """
    from nanoseg.datasets import DatasetRecipe
    from nanoseg.evaluation import dataset_for
    recipe = DatasetRecipe.of(contract)
    if data is None and not recipe.root:     # an imported model: its --images folder
        from convert.importing.images import imported_golden_images
        imported = imported_golden_images(contract, count)
        if imported is not None:
            return imported
    if classes is None and not recipe.classes_arg:
        classes = contract.class_names[1:]  # the model's classes, in label order
    dataset = dataset_for(contract, data, layout, split, classes, bundle_dir=bundle_dir)
    if len(dataset) == 0:
        raise NanosegError("the {} split of {} is empty: pick another --split".format(
            split, data or recipe.root))
    indices = sorted(set(np.linspace(0, len(dataset) - 1, min(count, len(dataset)))
                         .round().astype(int).tolist()))
    return [(dataset.samples[i].name, dataset.load(i)[0]) for i in indices]


def keras_golden(model, images, contract):
    """Preprocessed inputs (N,H,W,3) and Keras probabilities (N,H,W,C), one image a call."""
    from train.model import predict_probabilities
    inputs = np.stack([preprocess_image(image, contract, "RGB") for _, image in images])
    probs = np.concatenate([predict_probabilities(model, x[None]) for x in inputs])
    return inputs, probs


def onnxruntime_probabilities(bundle, onnx_name, inputs):
    """Run bundle/onnx_name on the golden inputs (NHWC) through edge's ONNX Runtime backend
    (the runtime's own layout handling and contract checks) -> (N,H,W,C)."""
    from edge.backends import OnnxRuntimeBackend
    backend = OnnxRuntimeBackend(bundle, "cpu", onnx_name)
    try:
        return np.stack([backend.infer(x) for x in inputs]).astype(np.float32)
    finally:
        backend.close()


# -- the whole export ---------------------------------------------------------------------
class Thresholds(object):
    """Pass/fail bounds for parity (defaults and their reasons: nanoseg/golden.py)."""

    def __init__(self, max_diff=golden.FP32_MAX_DIFF, min_agreement=golden.FP32_MIN_AGREEMENT,
                 fp16_max_diff=golden.FP16_MAX_DIFF,
                 fp16_min_agreement=golden.FP16_MIN_AGREEMENT):
        self.max_diff, self.min_agreement = float(max_diff), float(min_agreement)
        self.fp16_max_diff, self.fp16_min_agreement = float(fp16_max_diff), \
            float(fp16_min_agreement)

    def to_dict(self):
        return {"onnx": {"max_abs_diff": self.max_diff, "mask_agreement": self.min_agreement},
                "onnx_fp16": {"max_abs_diff": self.fp16_max_diff,
                              "decisive_agreement": self.fp16_min_agreement}}


def export_model(bundle, model, contract, opset=DEFAULT_OPSET, nchw=False):
    """Keras model -> bundle/model.onnx + model.contract.json; -> (ONNX path, ONNX contract)."""
    with timed("SavedModel written to {}".format(bundle.path(bundle_names.SAVED_MODEL))):
        saved = write_saved_model(model, contract, bundle.path(bundle_names.SAVED_MODEL))
    with timed("tf2onnx (opset {}, {})".format(opset, "NCHW" if nchw else "NHWC")):
        onnx_model = saved_model_to_onnx(saved, opset, nchw)
    rewritten = rewrite_nearest_resizes(onnx_model)
    if rewritten:
        LOG.info("rewrote %d Resize node(s) from tf_half_pixel_for_nn to asymmetric (exact for "
                 "integer scales; TensorRT 8.0/8.2 accept only this form): %s",
                 len(rewritten), ", ".join(rewritten))
    onnx_contract = onnx_contract_for(contract, nchw, opset)
    embed_contract(onnx_model, onnx_contract)
    check_onnx.require_trt_compatible(onnx_model, bundle.path(bundle_names.ONNX))
    path = save_onnx(onnx_model, bundle.path(bundle_names.ONNX))
    save_contract(onnx_contract, bundle.path(bundle_names.ONNX_CONTRACT))
    LOG.info("wrote %s: %s", path, check_onnx.summarize(onnx_model))
    return path, onnx_contract


def check_parity(bundle, onnx_contract, inputs, probs, thresholds):
    """ORT FP32 and FP16 vs Keras -> parity.json; raises over the thresholds."""
    import onnx
    results = {}
    with timed("ONNX Runtime FP32 on {} golden images".format(len(inputs))):
        results["onnx"] = golden.compare_probabilities(
            probs, onnxruntime_probabilities(bundle, bundle_names.ONNX, inputs), onnx_contract)
    with timed("FP16 copy written and run"):
        save_onnx(fp16_copy(onnx.load(bundle.path(bundle_names.ONNX))),
                  bundle.path(bundle_names.ONNX_FP16))
        results["onnx_fp16"] = golden.compare_probabilities(
            probs, onnxruntime_probabilities(bundle, bundle_names.ONNX_FP16, inputs),
            onnx_contract)
    for key, what in (("onnx", "model.onnx (ONNX Runtime FP32)"),
                      ("onnx_fp16", "model_fp16.onnx (ONNX Runtime FP16)")):
        LOG.info(golden.format_metrics(what, results[key]))
    report = dict(results, thresholds=thresholds.to_dict(), golden=bundle_names.GOLDEN_NPZ)
    write_text_atomic(bundle.path(bundle_names.PARITY_JSON),
                      json.dumps(report, indent=2, sort_keys=True) + "\n")
    golden.check_against_thresholds(results["onnx"], thresholds.max_diff,
                                     thresholds.min_agreement, "model.onnx (FP32)")
    golden.check_against_thresholds(results["onnx_fp16"], thresholds.fp16_max_diff,
                                    thresholds.fp16_min_agreement, "model_fp16.onnx",
                                    agreement_key="decisive_agreement",
                                    flags=("--fp16-max-diff", "--fp16-min-agreement"))
    return report


def export_bundle(bundle_dir, images, opset=DEFAULT_OPSET, nchw=False, thresholds=None):
    """The whole export for ``images`` [(name, RGB uint8)]; -> the parity report dict."""
    bundle = Bundle(bundle_dir)
    contract = bundle.contract()
    if opset > check_onnx.trt_ops.MAX_OPSET:
        raise NanosegError("--opset {} is above {}: TensorRT 8.0/8.2 cannot parse it".format(
            opset, check_onnx.trt_ops.MAX_OPSET))
    if not images:
        raise NanosegError("no golden images: --golden must be at least 1")
    with timed("loaded {}".format(bundle_names.MODEL_H5)):
        model = load_keras(bundle.require(bundle_names.MODEL_H5,
                                          "it is written by train/train.py"))
    _path, onnx_contract = export_model(bundle, model, contract, opset, nchw)
    with timed("Keras on {} golden images".format(len(images))):
        inputs, probs = keras_golden(model, images, contract)
        golden.save_golden(bundle.path(bundle_names.GOLDEN_NPZ), inputs, probs,
                           [name for name, _ in images], contract)
    return check_parity(bundle, onnx_contract, inputs, probs, thresholds or Thresholds())


def parse_args(argv=None):
    parser = cli.make_parser("Export a bundle's model.h5 to ONNX for TensorRT 8.0/8.2 "
                             "(JetPack 4.6), with golden outputs and parity checks.")
    cli.add_bundle_arg(parser)
    data = add_dataset_args(parser, "golden images (default: the dataset in the contract)",
                            split_help="split to take golden images from")
    data.add_argument("--golden", type=int, default=8, help="number of golden images")
    parser.add_argument("--nchw", action="store_true", help="NCHW model input")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                        help="ONNX opset (TensorRT 8.0/8.2 parse up to 13)")
    limits = parser.add_argument_group("parity thresholds (reasons: nanoseg/golden.py)")
    limits.add_argument("--max-diff", type=float, default=golden.FP32_MAX_DIFF,
                        help="max |dp| ONNX Runtime FP32 vs Keras")
    limits.add_argument("--min-agreement", type=float, default=golden.FP32_MIN_AGREEMENT,
                        help="min label agreement ONNX Runtime FP32 vs Keras")
    limits.add_argument("--fp16-max-diff", type=float, default=golden.FP16_MAX_DIFF,
                        help="max |dp| FP16 ONNX vs Keras")
    limits.add_argument("--fp16-min-agreement", type=float, default=golden.FP16_MIN_AGREEMENT,
                        help="min FP16 label agreement on pixels more than {} from the "
                             "threshold".format(golden.DECISIVE_MARGIN))
    cli.add_logging_args(parser)
    return parser.parse_args(argv)


def main(args):
    cli.setup_logging(args.log_level)
    keras_env.prepare()
    if args.golden < 1:
        raise NanosegError("--golden must be at least 1, got {}".format(args.golden))
    check_writable(args.bundle, "--bundle", folder=True)  # before minutes of export
    contract = Bundle(args.bundle).contract()
    images = load_golden_images(contract, args.data, args.layout, args.split, args.golden,
                                args.classes, bundle_dir=args.bundle)
    thresholds = Thresholds(args.max_diff, args.min_agreement, args.fp16_max_diff,
                            args.fp16_min_agreement)
    report = export_bundle(args.bundle, images, args.opset, args.nchw, thresholds)
    for key in ("onnx", "onnx_fp16"):
        print(golden.format_metrics(key, report[key]))
    print("wrote {} ({}, {}, {}, {}, {})".format(
        Bundle(args.bundle).root, bundle_names.ONNX, bundle_names.ONNX_CONTRACT,
        bundle_names.ONNX_FP16, bundle_names.GOLDEN_NPZ, bundle_names.PARITY_JSON))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli.run(main, parse_args))
