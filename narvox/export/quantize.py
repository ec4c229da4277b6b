"""int8 dynamic quantization of a bundle (ONNX Runtime's quantizer): a copy of the bundle whose
graphs keep their weights as int8 and quantize activations per call, for smaller files and faster
CPU inference at some cost in accuracy (bench/asr.py and RESULTS measure both).

Only MatMul and Gemm are quantized, the transformer and linear layers that carry the compute of
every narvox model: ONNX Runtime runs dynamically quantized convolutions (ConvInteger) slower
than float ones on CPU, and they are the codec decoder's whole graph.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from narvox.bundle import MANIFEST, read_bundle
from narvox.errors import NarvoxError

QUANTIZED_OPS = ["MatMul", "Gemm"]


def quantize_bundle(source: str | Path, out: str | Path) -> Path:
    """Writes the quantized copy of bundle `source` (a directory or shipped name) to `out` and
    returns it; the manifest records `"quantization": "int8-dynamic"`."""
    from onnxruntime.quantization import QuantType, quant_pre_process, quantize_dynamic
    bundle = read_bundle(source)
    out = Path(out)
    if out.resolve() == bundle.path.resolve():
        raise NarvoxError(f"{out}: give the quantized bundle a directory of its own, not the source's")
    if out.exists() and any(out.iterdir()):
        raise NarvoxError(f"{out}: already exists and is not empty")
    if bundle.settings.get("quantization"):
        raise NarvoxError(f"{bundle.path}: already quantized ({bundle.settings['quantization']})")
    shutil.copytree(bundle.path, out, dirs_exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the quantizer logs every tensor it visits on the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for graph in bundle.graphs:
                # ONNX Runtime's optimizer folds the weights' transposes into constants first:
                # only a MatMul by a constant can hold int8 weights
                folded = Path(tmp) / graph
                quant_pre_process(str(bundle.path / graph), str(folded), skip_symbolic_shape=True)
                quantize_dynamic(folded, out / graph, weight_type=QuantType.QInt8,
                                 op_types_to_quantize=QUANTIZED_OPS, extra_options={"MatMulConstBOnly": True})
    finally:
        root.setLevel(level)
    meta = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    meta["quantization"] = "int8-dynamic"
    (out / MANIFEST).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return read_bundle(out).path
