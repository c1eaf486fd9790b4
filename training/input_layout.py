"""An INT8 model's input as the camera gives it: uint8 BGR pixels (1, H, W, 3) instead of float RGB (1, 3, H, W).

A static INT8 QDQ graph begins by quantizing its float input with scale 1/255 and zero point 0, which turns
the 0..1 floats back into the very uint8 pixel values they came from. Feeding those pixels directly drops
that QuantizeLinear, the float conversion and channel swap before it (``to_blob``) and, as ONNX Runtime runs
quantized convolutions channels-last, the layout transpose too. The BGR → RGB swap is folded into the first
convolution's weights (its input channels are reversed), so the outputs are bit-for-bit those of the float
input graph. ``to_float_input`` undoes it, for tools that feed float RGB (Ultralytics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

UINT8_BGR_NHWC = "uint8 BGR NHWC"
FLOAT_RGB_NCHW = "float32 RGB NCHW 0..1"
_TRANSPOSE_NAME = "farz_input_nhwc_to_nchw"
_PIXEL_SCALE = np.float32(1 / 255)


class LayoutError(ValueError):
    """The graph does not have the shape this conversion needs; the message says what was found."""


def _consumers(graph: onnx.GraphProto, tensor: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if tensor in n.input]


def _initializer(graph: onnx.GraphProto, name: str) -> onnx.TensorProto:
    for init in graph.initializer:
        if init.name == name:
            return init
    raise LayoutError(f"{name!r} is not a constant initializer")


def _first_conv_weight(graph: onnx.GraphProto, dequantized_input: str) -> onnx.TensorProto:
    """The int8 weight initializer of the only Conv that reads the dequantized image."""
    convs = _consumers(graph, dequantized_input)
    if len(convs) != 1 or convs[0].op_type != "Conv":
        raise LayoutError(f"the image feeds {[n.op_type for n in convs]}, expected one Conv")
    weight_dq = next((n for n in graph.node if convs[0].input[1] in n.output), None)
    if weight_dq is None or weight_dq.op_type != "DequantizeLinear":
        raise LayoutError("the first Conv's weight is not quantized (expected a static INT8 QDQ model)")
    if len(_consumers(graph, weight_dq.input[0])) != 1:
        raise LayoutError("the first Conv's weight is shared with other nodes")
    return _initializer(graph, weight_dq.input[0])


def _reverse_input_channels(weight: onnx.TensorProto) -> None:
    array = numpy_helper.to_array(weight)
    if array.ndim != 4 or array.shape[1] != 3:
        raise LayoutError(f"the first Conv's weight has shape {array.shape}, expected (out, 3, kh, kw)")
    weight.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(array[:, ::-1]), weight.name))


def input_format(model: onnx.ModelProto) -> str:
    """``UINT8_BGR_NHWC`` or ``FLOAT_RGB_NCHW``, read from the graph's first input."""
    elem = model.graph.input[0].type.tensor_type.elem_type
    return UINT8_BGR_NHWC if elem == onnx.TensorProto.UINT8 else FLOAT_RGB_NCHW


def to_uint8_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a float-input static INT8 QDQ model whose input is uint8 BGR (1, H, W, 3); same outputs.

    Raises ``LayoutError`` when the graph does not begin with QuantizeLinear(scale 1/255, zero point 0) →
    DequantizeLinear → Conv on a (N, 3, H, W) float input.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if input_format(out) == UINT8_BGR_NHWC:
        raise LayoutError("the input is already uint8")
    image = graph.input[0]
    dims = list(image.type.tensor_type.shape.dim)
    if len(dims) != 4 or dims[1].dim_value != 3:
        raise LayoutError(f"the input {image.name!r} is not (N, 3, H, W)")
    quant = _consumers(graph, image.name)
    if len(quant) != 1 or quant[0].op_type != "QuantizeLinear":
        raise LayoutError(f"the input feeds {[n.op_type for n in quant]}, expected one QuantizeLinear (quantize the model first)")
    scale = numpy_helper.to_array(_initializer(graph, quant[0].input[1]))
    zero = numpy_helper.to_array(_initializer(graph, quant[0].input[2]))
    if scale.size != 1 or scale.item() != _PIXEL_SCALE or zero.dtype != np.uint8 or zero.item() != 0:
        raise LayoutError(f"the input is quantized with scale {scale.ravel()[:1]} and zero point {zero.ravel()[:1]}, expected 1/255 and uint8 0")
    dequant = _consumers(graph, quant[0].output[0])
    if len(dequant) != 1 or dequant[0].op_type != "DequantizeLinear":
        raise LayoutError("the quantized input feeds more than one DequantizeLinear")
    _reverse_input_channels(_first_conv_weight(graph, dequant[0].output[0]))
    nchw = image.name + "_nchw"
    dequant[0].input[0] = nchw
    graph.node.remove(quant[0])
    graph.node.insert(0, helper.make_node("Transpose", [image.name], [nchw], perm=[0, 3, 1, 2], name=_TRANSPOSE_NAME))
    shape = [d.dim_param or d.dim_value for d in (dims[0], dims[2], dims[3])]
    graph.input.remove(image)
    graph.input.insert(0, helper.make_tensor_value_info(image.name, onnx.TensorProto.UINT8, [shape[0], shape[1], shape[2], 3]))
    return out


def to_float_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """The inverse of ``to_uint8_input``: float RGB (1, 3, H, W) in 0..1 again; same outputs."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    transpose = next((n for n in graph.node if n.name == _TRANSPOSE_NAME), None)
    if input_format(out) != UINT8_BGR_NHWC or transpose is None:
        raise LayoutError("the input is not the uint8 BGR input that `to_uint8_input` makes")
    dequant = _consumers(graph, transpose.output[0])
    if len(dequant) != 1 or dequant[0].op_type != "DequantizeLinear":
        raise LayoutError("the transposed input does not feed one DequantizeLinear")
    _reverse_input_channels(_first_conv_weight(graph, dequant[0].output[0]))
    image = graph.input[0]
    quantized = image.name + "_QuantizeLinear_Output"
    quant = helper.make_node("QuantizeLinear", [image.name, dequant[0].input[1], dequant[0].input[2]], [quantized], name=image.name + "_QuantizeLinear")
    dequant[0].input[0] = quantized
    graph.node.remove(transpose)
    graph.node.insert(0, quant)
    dims = list(image.type.tensor_type.shape.dim)
    shape = [d.dim_param or d.dim_value for d in dims]
    graph.input.remove(image)
    graph.input.insert(0, helper.make_tensor_value_info(image.name, onnx.TensorProto.FLOAT, [shape[0], 3, shape[1], shape[2]]))
    return out


def convert_file(source: Path, out: Path, uint8: bool) -> str:
    """Write ``source`` with a uint8 (``uint8``) or float input to ``out``, metadata kept; returns the new format."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such model file")
    try:
        model = onnx.load(str(source))
    except Exception as exc:
        raise LayoutError(f"{source}: not an ONNX model ({exc})") from exc
    converted = to_uint8_input(model) if uint8 else to_float_input(model)
    fmt = input_format(converted)
    props = {p.key: p.value for p in converted.metadata_props} | {"input": fmt}
    del converted.metadata_props[:]
    for key, value in props.items():
        converted.metadata_props.add(key=key, value=value)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(out))
    return fmt
