"""What TensorRT 8.0 / 8.2's ONNX parser accepts, as data that convert/check_onnx.py applies.

Source: onnx-tensorrt ``docs/operators.md`` (the "Operator Support Matrix"), branches
``release/8.0`` (JetPack 4.6 ships TensorRT 8.0.1) and ``release/8.2-GA`` (JetPack 4.6.1+,
TensorRT 8.2.1), https://github.com/onnx/onnx-tensorrt/blob/release/8.0/docs/operators.md.
Both say "supports operators up to Opset 13". We keep the set both parsers accept: the 8.0
table's "Y" rows with the two corrections below (Dropout, SoftmaxCrossEntropyLoss), and the
8.0 restrictions, which are the stricter ones:

* Resize (8.0): "Asymmetric coordinate transformation mode only. Nearest or Linear resizing
  mode only. 'floor' mode only" for nearest. 8.2 also takes half_pixel, align_corners, ...,
  but its ``builtin_op_importers.cpp`` asserts "only support round_prefer_floor nearest mode
  in tf_half_pixel_for_nn" - so tf2onnx's UpSampling2D (tf_half_pixel_for_nn + floor) is
  rejected by *both*; convert/export_onnx.py rewrites it to asymmetric + floor (identical for
  integer scales).
* Clip: ``min``/``max`` must be initializers; Pad: zero padding on the last 2 dims only;
  Slice ``axes``, Split ``split``, Squeeze ``axes``, Unsqueeze ``axes``, CumSum ``axis``,
  ConvTranspose ``W``, InstanceNormalization ``scale``/``B`` must be initializers/constants.
* TopK: ``K`` must be an initializer (8.2's table; the importer asserts
  ``inputs.at(1).is_weights()`` from opset 10 on).
* Dropout: the 8.0 table marks it "N", but the parser imports it as an identity
  (``DEFINE_BUILTIN_OP_IMPORTER(Dropout)`` in builtin_op_importers.cpp from the TensorRT 5
  era through 8.2 and 10.x) and the 8.2 table marks it "Y": accepted. From opset 12 its
  ``training_mode`` input must be an initializer (and false).
* SoftmaxCrossEntropyLoss: "Y" in the 8.0 table, "N" in 8.2's (and every later one), with
  no importer in the parser: rejected.

ArgMax is in the table but this project forbids it in exported graphs: users report it
missing on the Nano's TensorRT 8.2, and the edge runtime does argmax in numpy anyway.
"""

MAX_OPSET = 13

# The 8.0 operator table's "Y" rows (release/8.0 docs/operators.md), plus Dropout and minus
# SoftmaxCrossEntropyLoss (see above): the ops both 8.0 and 8.2 import.
SUPPORTED_OPS = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization
Cast Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum
DepthToSpace DequantizeLinear Div Dropout Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather
GatherElements Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual GRU
HardSigmoid Identity ImageScaler InstanceNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean Min Mul Neg Not Or
Pad ParametricSoftplus Pow PRelu QuantizeLinear RandomUniform RandomUniformLike Range
ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd
ReduceSum ReduceSumSquare Relu Reshape Resize ReverseSequence RNN ScaledTanh Scan Selu Shape
Sigmoid Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth
Split Sqrt Squeeze Sub Sum Tan Tanh ThresholdedRelu Tile TopK Transpose Unsqueeze Upsample
Where
""".split())

# Ops the parser knows but this project keeps out of exported graphs, with the reason.
FORBIDDEN_OPS = {
    "ArgMax": "TensorRT 8.2 on the Nano lacks ArgMax and the edge does argmax in numpy: "
              "export probabilities (the model's sigmoid/softmax output), not labels",
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
}

RESIZE_COORDINATE_MODES = ("asymmetric",)
RESIZE_MODES = ("nearest", "linear")
RESIZE_NEAREST_MODES = ("floor",)

# The ONNX defaults the parser assumes when an attribute is absent (ONNX Resize-13 spec).
RESIZE_DEFAULTS = {"coordinate_transformation_mode": "half_pixel", "mode": "nearest",
                   "nearest_mode": "round_prefer_floor"}
