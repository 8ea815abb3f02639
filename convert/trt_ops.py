"""What TensorRT 8.0 / 8.2's ONNX parser accepts, as data that convert/check_onnx.py applies.

Sources: onnx-tensorrt branches ``release/8.0`` (8.0 GA; JetPack 4.6 ships TensorRT 8.0.1) and
``release/8.2-GA`` (JetPack 4.6.1+, TensorRT 8.2.1): ``docs/operators.md`` (the "Operator
Support Matrix", "operators up to Opset 13") and the asserts in ``builtin_op_importers.cpp``,
https://github.com/onnx/onnx-tensorrt/blob/release/8.0/docs/operators.md. We keep what both
parsers accept, so wherever they differ the 8.0 rule (the stricter one) applies:

* Ops: the rows marked "Y" in both tables. 8.0 GA and 8.2 agree on Dropout (Y, imported as
  an identity; from opset 12 its ``training_mode`` input must be an initializer and false),
  If (Y) and SoftmaxCrossEntropyLoss (N, no importer).
* Resize (importer, both): ``coordinate_transformation_mode`` half_pixel, pytorch_half_pixel,
  tf_half_pixel_for_nn, asymmetric or align_corners; ``mode`` nearest or linear (cubic is
  asserted out); ``nearest_mode`` floor, ceil, round_prefer_floor or round_prefer_ceil, but
  tf_half_pixel_for_nn only with round_prefer_floor ("This version of TensorRT only support
  round_prefer_floor nearest mode in tf_half_pixel_for_nn!"). So tf2onnx's Keras
  UpSampling2D (nearest, tf_half_pixel_for_nn, floor) is rejected by both: convert/
  export_onnx.py rewrites it to asymmetric + floor (identical for integer scales).
  Without ``sizes`` (input 3) the ``scales`` (input 2; input 1 before opset 11) must be an
  initializer, and a linear resize may scale only the innermost 3 axes.
* Pad (importer): from opset 11 ``pads`` (input 1) and ``constant_value`` (input 2) must be
  initializers (8.0; 8.2 also takes tensors); all-zero pads are an identity; otherwise mode
  constant with value 0, non-zero padding on at most two axes (any two: the importer
  transposes them last), and no negative pads (8.2 refuses them).
* Clip ``min``/``max``, Slice ``axes``, Split ``split``, Squeeze/Unsqueeze ``axes``, CumSum
  ``axis``, ConvTranspose ``W``, InstanceNormalization ``scale``/``B``, TopK ``K`` (from
  opset 10) must be initializers or Constant outputs (the tables' notes and the importers'
  ``is_weights()`` asserts).

ArgMax is "Y" in both tables: keeping it out of exported graphs is nanoseg's policy, not a
parser limit. The engine outputs probabilities and the edge runtime does the argmax in numpy.
"""

MAX_OPSET = 13

# The "Y" rows of both tables (release/8.0 and release/8.2-GA docs/operators.md).
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DepthToSpace DequantizeLinear Div Dropout Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU
HardSigmoid Identity If ImageScaler InstanceNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg Not Or
Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range
ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN ScaledTanh Scan Selu Shape
Sigmoid Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth
Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample
Where
""".split())

# Ops the parser imports but nanoseg keeps out of exported graphs (its policy), with the reason.
FORBIDDEN_OPS = {
    "ArgMax": "nanoseg keeps ArgMax out of exported graphs (the edge runtime does the argmax "
              "in numpy): export probabilities (the model's sigmoid/softmax output), not "
              "labels",
}

# Inputs (by position) that the parser needs as initializers or Constant outputs.
CONSTANT_INPUTS = {
    "Clip": (1, 2),
    "Slice": (3,),
    "Split": (1,),
    "Squeeze": (1,),
    "Unsqueeze": (1,),
    "CumSum": (1,),
    "ConvTranspose": (1,),
    "InstanceNormalization": (1, 2),
    "TopK": (1,),
    "Dropout": (2,),
    "Pad": (1, 2),
}

RESIZE_COORDINATE_MODES = ("half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn",
                           "asymmetric", "align_corners")
RESIZE_MODES = ("nearest", "linear")
RESIZE_NEAREST_MODES = ("floor", "ceil", "round_prefer_floor", "round_prefer_ceil")
# tf_half_pixel_for_nn takes only this nearest_mode (asserted by both importers).
RESIZE_TF_HALF_PIXEL_NEAREST_MODE = "round_prefer_floor"
RESIZE_LINEAR_AXES = 3  # a linear resize scales only the innermost 3 axes
PAD_MAX_AXES = 2

# The ONNX defaults the parser assumes when an attribute is absent (ONNX Resize-13 spec).
RESIZE_DEFAULTS = {"coordinate_transformation_mode": "half_pixel", "mode": "nearest",
                   "nearest_mode": "round_prefer_floor"}
