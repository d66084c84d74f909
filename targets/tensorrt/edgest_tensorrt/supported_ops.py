"""The ONNX operators TensorRT 10's ONNX parser imports, and those it refuses.

Source: onnx/onnx-tensorrt, ``docs/operators.md`` ("Supported ONNX Operators"), the table for
TensorRT 10.x (10.15: "supports operators in the inclusive range of opset 9 to opset 24"),
https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md . Operators marked ``Y`` are
in :data:`SUPPORTED`, those marked ``N`` in :data:`UNSUPPORTED`; an operator in neither is not
in the table at all (newer than the table, or from a non-default domain) and counts as
unsupported. The restrictions column is partly checked in :mod:`edgest_tensorrt.check`.

Update both sets (and :data:`TABLE_VERSION`) from that file when a TensorRT release changes it.
"""

from __future__ import annotations

#: the TensorRT release whose operators.md these sets were written from
TABLE_VERSION = "10.15"
#: default-domain opsets the parser accepts (inclusive)
OPSET_MIN, OPSET_MAX = 9, 24

#: domains the parser reads operators from ("" and "ai.onnx" are the same default domain)
DEFAULT_DOMAINS = frozenset({"", "ai.onnx"})

SUPPORTED: frozenset[str] = frozenset({
    "Abs", "Acos", "Acosh", "Add", "And", "ArgMax", "ArgMin", "Asin", "Asinh", "Atan", "Atanh",
    "Attention", "AveragePool",
    "BatchNormalization", "BlackmanWindow",
    "Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
    "ConvTranspose", "Cos", "Cosh", "CumSum",
    "DeformConv", "DepthToSpace", "DequantizeLinear", "Div", "Dropout",
    "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike",
    "Flatten", "Floor",
    "Gather", "GatherElements", "GatherND", "Gelu", "Gemm", "GlobalAveragePool", "GlobalLpPool",
    "GlobalMaxPool", "Greater", "GreaterOrEqual", "GridSample", "GroupNormalization", "GRU",
    "HammingWindow", "HannWindow", "HardSigmoid", "HardSwish", "Hardmax",
    "Identity", "If", "ImageScaler", "InstanceNormalization", "IsInf", "IsNaN",
    "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax", "Loop", "LRN",
    "LSTM", "LpNormalization", "LpPool",
    "MatMul", "Max", "MaxPool", "Mean", "MeanVarianceNormalization", "Min", "Mish", "Mod", "Mul",
    "Neg", "NonMaxSuppression", "NonZero", "Not",
    "OneHot", "Or",
    "Pad", "ParametricSoftplus", "Pow", "PRelu",
    "QuantizeLinear",
    "RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Range", "Reciprocal",
    "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin",
    "ReduceProd", "ReduceSum", "ReduceSumSquare", "Relu", "Reshape", "Resize", "ReverseSequence",
    "RMSNormalization", "RNN", "RoiAlign", "RotaryEmbedding", "Round",
    "STFT", "ScaledTanh", "Scan", "Scatter", "ScatterElements", "ScatterND", "Selu", "Shape", "Shrink",
    "Sigmoid", "Sign", "Sin", "Sinh", "Size", "Slice", "Softmax", "Softplus", "Softsign",
    "SpaceToDepth", "Split", "Sqrt", "Squeeze", "Sub", "Sum",
    "Tan", "Tanh", "TensorScatter", "ThresholdedRelu", "Tile", "TopK", "Transpose", "Trilu",
    "Unsqueeze", "Upsample",
    "Where",
    "Xor",
})

UNSUPPORTED: frozenset[str] = frozenset({
    "AffineGrid", "Bernoulli", "BitShift", "BitwiseAnd", "BitwiseNot", "BitwiseOr", "BitwiseXor",
    "CenterCropPad", "Col2Im", "Compress", "ConcatFromSequence", "ConvInteger", "DFT", "Det",
    "DynamicQuantizeLinear", "ImageDecoder", "MatMulInteger", "MaxRoiPool", "MaxUnpool",
    "MelWeightMatrix", "Multinomial", "NegativeLogLikelihoodLoss", "Optional", "OptionalGetElement",
    "OptionalHasElement", "QLinearConv", "QLinearMatMul", "RegexFullMatch", "SequenceAt",
    "SequenceConstruct", "SequenceEmpty", "SequenceErase", "SequenceInsert", "SequenceLength",
    "SequenceMap", "SoftmaxCrossEntropyLoss", "SplitToSequence", "StringConcat", "StringNormalizer",
    "StringSplit", "TfIdfVectorizer", "Unique",
})

#: operators whose output shape depends on the input values: TensorRT imports some of them, but
#: the engine then has data-dependent shapes that edgest's static-shape pipeline does not expect
DATA_DEPENDENT_SHAPE = frozenset({"NonZero", "NonMaxSuppression", "Unique", "Compress"})

#: ONNX tensor element types TensorRT accepts (onnx.TensorProto enum names); DOUBLE is cast down to
#: FLOAT with clamping, UINT8 only on network inputs and outputs
TENSOR_TYPES = frozenset({
    "FLOAT", "FLOAT16", "BFLOAT16", "DOUBLE", "INT32", "INT64", "INT8", "UINT8", "BOOL",
    "FLOAT8E4M3FN", "FLOAT4E2M1", "INT4",
})
