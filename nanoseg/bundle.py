"""The model bundle: one folder that travels from the training PC to the Jetson.

Layout (every name is defined here and nowhere else)::

    BUNDLE/
      contract.json        what the model sees and outputs (nanoseg/contract.py)
      model.h5             full Keras model (training PC only)
      weights.h5           weights only;  model.json  architecture
      train_log.csv        per-epoch log;  curves.png  loss / IoU curves
      split.csv            the train/val split it was trained on (image, mask, split)
      evaluation.json      mIoU, per-class IoU, pixel accuracy; iou_per_class.png
      golden.npz           N preprocessed inputs + Keras probabilities (parity anywhere)
      model.onnx           opset 13, batch 1, contract embedded in its metadata
      model.contract.json  the ONNX's own contract (layout may be NCHW)
      model_fp16.onnx      FP16 copy (CPU proxy of the FP16 engine's accuracy)
      parity.json          ONNX / FP16 agreement with Keras
      validation.json      every format against Keras (convert/validate.py); validation.md
      engines/             TensorRT engines + sidecar JSON + timing cache (built on the Jetson)
      checkpoints/         training state: state.json, best.weights.h5, last.ckpt (resume)
      logs/                TensorBoard logs
    BUNDLE.partial/        the same while training runs, plus owner.json (pid + host)

numpy-free, Python 3.6: the Jetson reads bundles too.
"""
import os

from nanoseg.contract import load_contract
from nanoseg.errors import NanosegError

CONTRACT_JSON = "contract.json"
MODEL_H5 = "model.h5"
WEIGHTS_H5 = "weights.h5"
MODEL_JSON = "model.json"
TRAIN_LOG = "train_log.csv"
SPLIT_CSV = "split.csv"
CURVES_PNG = "curves.png"
EVALUATION_JSON = "evaluation.json"
EVALUATION_PNG = "iou_per_class.png"
GOLDEN_NPZ = "golden.npz"
ONNX = "model.onnx"
ONNX_CONTRACT = "model.contract.json"
ONNX_FP16 = "model_fp16.onnx"
PARITY_JSON = "parity.json"
SAVED_MODEL = "saved_model"
ENGINES_DIR = "engines"
VALIDATION_JSON = "validation.json"
VALIDATION_MD = "validation.md"
CHECKPOINTS_DIR = "checkpoints"
STATE_JSON = "state.json"            # in checkpoints/
BEST_WEIGHTS = "best.weights.h5"     # in checkpoints/
LAST_WEIGHTS = "last.ckpt"           # in checkpoints/: TensorFlow checkpoint, weights + optimizer
LOGS_DIR = "logs"
PARTIAL_SUFFIX = ".partial"          # BUNDLE.partial: the folder a training run works in
OWNER_JSON = "owner.json"            # in BUNDLE.partial: pid + host of the run that made it


class Bundle(object):
    """Paths inside a bundle folder, and one-line errors for what is missing."""

    def __init__(self, root):
        self.root = os.path.abspath(str(root))

    def path(self, name):
        return os.path.join(self.root, name)

    def has(self, name):
        return os.path.exists(self.path(name))

    def require(self, name, hint=None):
        """The path of ``name``, or a NanosegError saying what makes it."""
        if not os.path.isdir(self.root):
            raise NanosegError("bundle folder not found: {} (train one with train/train.py "
                               "--out {})".format(self.root, self.root))
        path = self.path(name)
        if not os.path.exists(path):
            raise NanosegError("{} is missing from bundle {}{}".format(
                name, self.root, ": " + hint if hint else ""))
        return path

    @property
    def contract_path(self):
        return self.path(CONTRACT_JSON)

    def contract(self):
        """The bundle's contract (from the Keras model)."""
        return load_contract(self.require(CONTRACT_JSON,
                                          "it is written by train/train.py"))

    def onnx_contract(self):
        """The contract of the exported ONNX (its layout may be NCHW)."""
        return load_contract(self.require(ONNX_CONTRACT,
                                          "run convert/export_onnx.py --bundle " + self.root))

    @property
    def engines_dir(self):
        return self.path(ENGINES_DIR)

    def __repr__(self):
        return "Bundle({})".format(self.root)
