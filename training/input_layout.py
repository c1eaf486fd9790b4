"""A model's input as the camera gives it: uint8 BGR pixels (1, H, W, 3) instead of float RGB (1, 3, H, W).

Feeding the letterboxed frame as it is drops the float conversion, channel swap and layout change of
``to_blob`` from every frame. Inside the graph the pixels go through one Transpose to (1, 3, H, W) and:
- where the first convolution is INT8, the graph began by quantizing its float input with scale 1/255 and
  zero point 0, which turns the 0..1 floats back into the very uint8 values they came from: that
  QuantizeLinear goes, and the outputs are bit-for-bit those of the float-input graph;
- where the first convolution is FP32 (farz's default: with three input channels it is slower in INT8), a
  Cast to float and a Mul by 1/255 feed it — the arithmetic of ``to_blob``; the reversed input channels are
  summed in another order, so outputs are equal to float rounding, which a requantization after it can turn
  into one quantization step (detections within a pixel or two; accuracy measured in the model card).
The BGR → RGB swap is folded into the first convolution's weights (input channels reversed).
``to_float_input`` undoes it all, for tools that feed float RGB (Ultralytics).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from training.metadata import put_metadata

UINT8_BGR_NHWC = "uint8 BGR NHWC"
FLOAT_RGB_NCHW = "float32 RGB NCHW 0..1"
_TRANSPOSE_NAME = "farz_input_nhwc_to_nchw"
_CAST_NAME = "farz_input_to_float"
_MUL_NAME = "farz_input_to_0_1"
_SCALE_NAME = "farz_pixel_scale"
_PIXEL_SCALE = np.float32(1 / 255)


class LayoutError(ValueError):
    """The graph does not have the shape this conversion needs; the message says what was found."""


def _consumers(graph: onnx.GraphProto, tensor: str) -> list[onnx.NodeProto]:
    return [n for n in graph.node if tensor in n.input]


def _initializer(graph: onnx.GraphProto, name: str) -> onnx.TensorProto:
    found: onnx.TensorProto
    for found in graph.initializer:
        if found.name == name:
            return found
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


def _image_input(graph: onnx.GraphProto) -> tuple[onnx.ValueInfoProto, list[onnx.TensorShapeProto.Dimension]]:
    image = graph.input[0]
    dims = list(image.type.tensor_type.shape.dim)
    if len(dims) != 4 or dims[1].dim_value != 3:
        raise LayoutError(f"the input {image.name!r} is not (N, 3, H, W)")
    return image, dims


def _float_conv_weight(graph: onnx.GraphProto, conv: onnx.NodeProto) -> onnx.TensorProto:
    """The float weight initializer of a first Conv kept in FP32 (only that Conv may use it)."""
    if len(_consumers(graph, conv.input[1])) != 1:
        raise LayoutError("the first Conv's weight is shared with other nodes")
    weight = _initializer(graph, conv.input[1])
    if weight.data_type != onnx.TensorProto.FLOAT:
        raise LayoutError("the first Conv's weight is not float")
    return weight


def to_uint8_input(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of a float-input model (a static INT8 QDQ one, or FP32) whose input is uint8 BGR (1, H, W, 3).

    Two graph starts are understood: QuantizeLinear(scale 1/255, zero point 0) → DequantizeLinear → Conv
    (the first convolution in INT8: the pixels *are* the quantized input), and a first Conv in FP32 (the
    pixels are cast to float and multiplied by 1/255, as ``to_blob`` does: outputs equal to float rounding).
    ``to_float_input`` restores the float-input graph exactly. Anything else raises ``LayoutError``.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    if input_format(out) == UINT8_BGR_NHWC:
        raise LayoutError("the input is already uint8")
    image, dims = _image_input(graph)
    first = _consumers(graph, image.name)
    nchw = image.name + "_nchw"
    if len(first) == 1 and first[0].op_type == "Conv":
        _reverse_input_channels(_float_conv_weight(graph, first[0]))
        as_float, scaled = image.name + "_float", image.name + "_scaled"
        graph.initializer.append(numpy_helper.from_array(np.array(_PIXEL_SCALE, np.float32), _SCALE_NAME))
        first[0].input[0] = scaled
        graph.node.insert(0, helper.make_node("Mul", [as_float, _SCALE_NAME], [scaled], name=_MUL_NAME))
        graph.node.insert(0, helper.make_node("Cast", [nchw], [as_float], to=onnx.TensorProto.FLOAT, name=_CAST_NAME))
    elif len(first) == 1 and first[0].op_type == "QuantizeLinear":
        quant = first[0]
        scale = numpy_helper.to_array(_initializer(graph, quant.input[1]))
        zero = numpy_helper.to_array(_initializer(graph, quant.input[2]))
        if scale.size != 1 or scale.item() != _PIXEL_SCALE or zero.dtype != np.uint8 or zero.item() != 0:
            raise LayoutError(
                f"the input is quantized with scale {scale.ravel()[:1]} and zero point {zero.ravel()[:1]}, expected 1/255 and uint8 0"
            )
        dequant = _consumers(graph, quant.output[0])
        if len(dequant) != 1 or dequant[0].op_type != "DequantizeLinear":
            raise LayoutError("the quantized input feeds more than one DequantizeLinear")
        _reverse_input_channels(_first_conv_weight(graph, dequant[0].output[0]))
        dequant[0].input[0] = nchw
        graph.node.remove(quant)
    else:
        found = [n.op_type for n in first]
        raise LayoutError(f"the input feeds {found}, expected one QuantizeLinear or one Conv (quantize the model first)")
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
    image = graph.input[0]
    first = _consumers(graph, transpose.output[0])
    if len(first) == 1 and first[0].name == _CAST_NAME:
        mul = _consumers(graph, first[0].output[0])
        convs = _consumers(graph, mul[0].output[0]) if len(mul) == 1 and mul[0].name == _MUL_NAME else []
        if len(convs) != 1 or convs[0].op_type != "Conv":
            raise LayoutError("the cast and scaled input does not feed one Conv")
        _reverse_input_channels(_float_conv_weight(graph, convs[0]))
        convs[0].input[0] = image.name
        graph.node.remove(first[0])
        graph.node.remove(mul[0])
        graph.initializer.remove(_initializer(graph, _SCALE_NAME))
    elif len(first) == 1 and first[0].op_type == "DequantizeLinear":
        dequant = first[0]
        _reverse_input_channels(_first_conv_weight(graph, dequant.output[0]))
        quantized = image.name + "_QuantizeLinear_Output"
        inputs = [image.name, dequant.input[1], dequant.input[2]]
        graph.node.insert(0, helper.make_node("QuantizeLinear", inputs, [quantized], name=image.name + "_QuantizeLinear"))
        dequant.input[0] = quantized
    else:
        raise LayoutError("the transposed input feeds neither a Cast nor one DequantizeLinear")
    graph.node.remove(transpose)
    shape = [d.dim_param or d.dim_value for d in image.type.tensor_type.shape.dim]
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
    put_metadata(converted, {"input": fmt})
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(converted, str(out))
    return fmt
