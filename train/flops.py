"""Count multiply-accumulates of a Keras model from its layers' shapes.

Used to justify the default backbone and input size for the Jetson Nano
(docs/choosing-a-backbone.md): the Nano's ~470 GFLOP/s FP16 peak makes the per-frame MAC
count the first-order latency estimate.
Only layers that multiply matter (convolutions, depthwise and transposed convolutions,
dense); BatchNorm folds into the preceding convolution in TensorRT and activations,
additions and upsampling are memory-bound, so they are left out on purpose.

    python3 train/flops.py --backbone mobilenetv2 --size 256 256
"""
if __package__ in (None, ""):  # run as a script: make the repo root importable
    import os, sys  # noqa: E401
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import logging
import sys

from nanoseg import cli

LOG = logging.getLogger(__name__)


def _spatial(shape):
    """(H, W) of an NHWC shape."""
    return int(shape[1]), int(shape[2])


def layer_macs(layer):
    """MACs of one layer for one image (0 for layers that do not multiply)."""
    import tensorflow as tf
    if isinstance(layer, tf.keras.Model):
        return model_macs(layer)
    if isinstance(layer, tf.keras.layers.DepthwiseConv2D):
        kh, kw = layer.kernel_size
        out_h, out_w = _spatial(layer.output_shape)
        return out_h * out_w * int(layer.output_shape[-1]) * kh * kw
    if isinstance(layer, tf.keras.layers.Conv2DTranspose):
        kh, kw = layer.kernel_size
        in_h, in_w = _spatial(layer.input_shape)
        return in_h * in_w * int(layer.input_shape[-1]) * layer.filters * kh * kw
    if isinstance(layer, tf.keras.layers.SeparableConv2D):
        kh, kw = layer.kernel_size
        in_c = int(layer.input_shape[-1])
        out_h, out_w = _spatial(layer.output_shape)
        depth = out_h * out_w * in_c * layer.depth_multiplier * kh * kw
        return depth + out_h * out_w * in_c * layer.depth_multiplier * layer.filters
    if isinstance(layer, tf.keras.layers.Conv2D):
        kh, kw = layer.kernel_size
        in_c = int(layer.input_shape[-1]) // max(1, getattr(layer, "groups", 1))
        out_h, out_w = _spatial(layer.output_shape)
        return out_h * out_w * layer.filters * kh * kw * in_c
    if isinstance(layer, tf.keras.layers.Dense):
        return int(layer.input_shape[-1]) * layer.units
    return 0


def model_macs(model):
    """Total MACs of ``model`` for one image of its (fixed) input size."""
    return sum(layer_macs(layer) for layer in model.layers)


def count(model):
    """{"macs", "gflops" (2 x MACs / 1e9), "params"} for a report or a docs table."""
    macs = model_macs(model)
    return {"macs": int(macs), "gflops": round(2.0 * macs / 1e9, 3),
            "params": int(model.count_params())}


def parse_args(argv=None):
    parser = cli.make_parser("Count MACs/FLOPs of a Unet (segmentation_models) for the "
                             "Jetson default-choice table.")
    parser.add_argument("--backbone", nargs="+", default=["mobilenetv2"],
                        help="one or more segmentation_models backbones")
    parser.add_argument("--size", nargs=2, type=int, default=[256, 256],
                        metavar=("H", "W"), help="model input height and width")
    parser.add_argument("--classes", type=int, default=1,
                        help="output channels (1 = sigmoid, N+1 = softmax)")
    return parser.parse_args(argv)


def main(args):
    from train import keras_env
    keras_env.prepare()
    from nanoseg.contract import Contract
    from nanoseg.normalization import Normalization
    from train.model import build_model
    names = ["class{}".format(i) for i in range(max(1, args.classes - 1))]
    contract = Contract.create(args.size[0], args.size[1], names,
                               "sigmoid" if args.classes == 1 else "softmax",
                               Normalization.named("scale"))
    print("backbone         size       GFLOPs   MACs(G)  params(M)")
    for backbone in args.backbone:
        result = count(build_model(backbone, contract, encoder_weights=None))
        print("{:<16s} {:>4d}x{:<4d} {:>8.2f} {:>8.2f} {:>9.2f}".format(
            backbone, args.size[0], args.size[1], result["gflops"], result["macs"] / 1e9,
            result["params"] / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, parse_args))
