"""Helpers shared by every exporter."""
from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch

OPSET = 17


def export(module: torch.nn.Module, args: tuple, path: Path, input_names: list[str],
           output_names: list[str], dynamic_axes: dict) -> Path:
    """TorchScript-based export: CIF's token count is data-dependent, which this exporter records
    as a dynamic shape while the dynamo exporter needs it bounded by hand."""
    module.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)
    return path


def add_metadata(path: Path, metadata: dict) -> None:
    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in metadata.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, str(value)
    onnx.save(model, str(path))
