"""The op types TensorRT's ONNX parser imports natively, per TensorRT release (and where that list comes from).

Why it matters: onnx-tensorrt's ``ModelImporter::parseNode`` dispatches a node by **op type alone**:
``if (opImporters.count(nodeType)) importFunc = &opImporters.at(nodeType); else if (local function) ...;
else importFunc = &opImporters.at("FallbackPluginImporter")`` (``ModelImporter.cpp``, unchanged since
10.0). The node's domain is not looked at, so a plugin node whose op type equals a built-in importer's
name never reaches the plugin registry. Until TensorRT 10.15 added ``OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE``
there was no way around that; our plugin's op type (:data:`dcpose_trt.contract.DCN_OP_TYPE`) is therefore
chosen to be in none of these lists (``tests/engine/test_parser_ops.py``).

Sources (the keys are the ``DEFINE_BUILTIN_OP_IMPORTER(op)`` names of ``onnxOpImporters.cpp``, each of
which registers ``#op`` in ``getBuiltinOpImporterMap()``):

- 10.1: read from ``onnxOpImporters.cpp`` at onnx/onnx-tensorrt tag ``release/10.1-GA``
  (commit 96e781103cfc4adf4a6bb557e94bac8e693f6f4c), 171 names. ``DeformConv`` is there: it was added in
  10.1 ("Added support for `DeformConv` operation", ``docs/Changelog.md``).
- Later releases: the 10.1 list plus the operators each release's entry of onnx-tensorrt's
  ``docs/Changelog.md`` (10.15 GA edition) says it added: 10.4 ``BlackmanWindow``, ``HammingWindow``,
  ``HannWindow``; 10.5 ``STFT``; 10.12 custom MXFP8 quantization ops (``TRT_MXFP8QuantizeLinear``,
  ``TRT_MXFP8DequantizeLinear``, names confirmed in a 10.14-era ``onnxOpImporters.cpp``); 10.14
  ``Attention`` (confirmed there too); 10.15 ``RotaryEmbedding``, ``RMSNormalization``, ``TensorScatter``
  and "more specialized quantization ops" (names not listed: every custom op importer of onnx-tensorrt is
  named ``TRT_*``, see :data:`RESERVED_PREFIXES`).
- 10.16 and 11.0 (issue 23): no parser changelog entry was found for either (unverified): taken as the
  10.15 list. 11.2: ``DFT`` (NVIDIA/TensorRT release notes of the 11.2 OSS release: "Added support for the
  DFT operator and 5D GridSample"). 11.5 added opset 25 and ``Squeeze`` without axes (no new op type).
  Two rules cover what a release may add unlisted: any importer of a standard ONNX operator is in
  ``onnx.defs`` (the test checks our op type against it), and custom importers carry the ``TRT_`` prefix.

``LocalFunctionImporter`` and ``FallbackPluginImporter`` are registered in the same map (the dispatcher
looks them up by those names), so they are listed too.
"""

from __future__ import annotations

SOURCE_10_1 = "onnx/onnx-tensorrt@release/10.1-GA (96e781103cfc4adf4a6bb557e94bac8e693f6f4c) onnxOpImporters.cpp"
SOURCE_CHANGELOG = "onnx/onnx-tensorrt docs/Changelog.md (TensorRT 10.15 GA edition)"

_BUILTIN_10_1 = frozenset("""
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool BatchNormalization Cast CastLike Ceil
Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv DepthToSpace
DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike FallbackPluginImporter Flatten Floor GRU
Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
GridSample GroupNormalization HardSigmoid HardSwish Hardmax Identity If ImageScaler InstanceNormalization
IsInf IsNaN LRN LSTM LayerNormalization LeakyRelu Less LessOrEqual LocalFunctionImporter Log LogSoftmax Loop
LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish Mod Mul Neg
NonMaxSuppression NonZero Not OneHot Or PRelu Pad ParametricSoftplus Pow QuantizeLinear RNN RandomNormal
RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RoiAlign Round ScaledTanh Scan Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid
Sign Sin Sinh Size Slice Softmax Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum TRT_AveragePool
TRT_Conv TRT_Deconv TRT_FP8DequantizeLinear TRT_FP8QuantizeLinear TRT_FloorDiv TRT_Gather
TRT_INT4DequantizeLinear TRT_INT4QuantizeLinear TRT_MatMul TRT_MaxAverageBlendPool TRT_MaxPool TRT_PluginV2
TRT_RaggedSoftmax TRT_Resize TRT_Scale TRT_Shuffle TRT_Slice TRT_TopK_Min Tan Tanh ThresholdedRelu Tile TopK
Transpose Trilu Unsqueeze Upsample Where Xor
""".split())

# Additions per release (onnx-tensorrt docs/Changelog.md), cumulative.
_ADDED: dict[str, frozenset[str]] = {
    "10.4": frozenset({"BlackmanWindow", "HammingWindow", "HannWindow"}),
    "10.5": frozenset({"STFT"}),
    "10.12": frozenset({"TRT_MXFP8QuantizeLinear", "TRT_MXFP8DequantizeLinear"}),
    "10.14": frozenset({"Attention"}),
    "10.15": frozenset({"RotaryEmbedding", "RMSNormalization", "TensorScatter"}),
    "11.2": frozenset({"DFT"}),
}
# Releases whose list is the previous one because no changelog entry was found (said as "unverified").
UNVERIFIED_RELEASES = ("10.16", "11.0")

# Name prefixes of onnx-tensorrt's non-ONNX importers (custom quantization and legacy TensorRT ops).
RESERVED_PREFIXES = ("TRT_",)

# TensorRT releases the project supports (JetPack 6.x, first AOT plugin, JetPack 7, the 10.15 flag, 11.x).
SUPPORTED_RELEASES = ("10.3", "10.9", "10.13", "10.14", "10.15", "10.16", "11.0", "11.4")


def _key(release: str) -> tuple[int, ...]:
    return tuple(int(p) for p in release.split(".")[:2])


def builtin_importers(release: str) -> frozenset[str]:
    """Op types the ONNX parser of TensorRT ``release`` (``"10.13"``, ``"11.4"``) imports without a plugin."""
    if _key(release) < (10, 1):
        raise ValueError(f"no importer list for TensorRT {release} (the project supports 10.3 and later)")
    names = set(_BUILTIN_10_1)
    for added_in, ops in _ADDED.items():
        if _key(release) >= _key(added_in):
            names |= ops
    return frozenset(names)


def shadows_builtin(op_type: str, release: str) -> bool:
    """True when a node of ``op_type`` would go to a built-in importer (not the plugin registry) on ``release``."""
    return op_type in builtin_importers(release) or op_type.startswith(RESERVED_PREFIXES)


def has_plugin_override(release: str) -> bool:
    """``OnnxParserFlag.ENABLE_PLUGIN_OVERRIDE`` exists from TensorRT 10.15 (onnx-tensorrt changelog)."""
    return _key(release) >= (10, 15)
