"""Helpers shared by every exporter."""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

from narvox.registry import Graph

OPSET = 17


def export(module: torch.nn.Module, args: tuple, path: Path, graph: Graph, axes: list[dict[int, str]]) -> Path:
    """Trace `module` into the graph a bundle kind's registry entry names. `axes`: the dynamic
    axes of each input, then of each output, in the graph's order ({} for none).

    TorchScript-based export: CIF's token count is data-dependent, which this exporter records
    as a dynamic shape while the dynamo exporter needs it bounded by hand."""
    names = [*graph.inputs, *graph.outputs]
    dynamic_axes = {name: a for name, a in zip(names, axes, strict=True) if a}
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=list(graph.inputs),
                          output_names=list(graph.outputs), dynamic_axes=dynamic_axes,
                          opset_version=OPSET, dynamo=False)
    return path


def add_metadata(path: Path, metadata: dict) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(model, str(path))


def store_weights_as_float16(path: Path, min_elements: int = 1024) -> None:
    """Keep large float32 initializers and constants (buffers such as the inverse STFT's bases
    are exported as Constant nodes) as float16 plus a Cast back to float32. ONNX Runtime folds
    the casts when it loads the model, so the file halves and the arithmetic stays float32."""
    from onnx import TensorProto, helper, numpy_helper
    model = onnx.load(str(path))
    graph = model.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(init)
        if weights.size < min_elements:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(weights.astype("float16"), f"{name}__fp16"))
        casts.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT))
    nodes = casts  # the initializers' casts first, each constant's right after it
    for node in graph.node:
        nodes.append(node)
        value = next((a for a in node.attribute if a.name == "value"), None) if node.op_type == "Constant" else None
        if value is None or value.t.data_type != TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(value.t)
        if weights.size < min_elements:
            continue
        name = node.output[0]
        value.t.CopyFrom(numpy_helper.from_array(weights.astype("float16")))
        node.output[0] = f"{name}__fp16"
        nodes.append(helper.make_node("Cast", [f"{name}__fp16"], [name], to=TensorProto.FLOAT))
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(path))
