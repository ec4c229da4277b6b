"""Rebuild a PyTorch model directory from an exported ONNX bundle's weights.

A shipped bundle is all that remains of a training run once its exp/ is gone. When a fix changes
the exported graph but not the trained weights (e.g. masking padded frames), this recovers the
weights so the fixed graph can be exported again without retraining:

    python tools/bundle_weights.py narvox/pretrained/asr/paraformer \
        egs/synth_en/asr/conf/paraformer.yaml /tmp/paraformer_model
    narvox export /tmp/paraformer_model --out /tmp/bundles

The TorchScript exporter stores each nn.Linear weight transposed under a generated name
(`onnx::MatMul_N`) and keeps every other parameter under its own name; a Linear's weight is found
through the bias added to its MatMul's output. Parameters the inference graph never reads (the
GLM embedding and CTC head of Paraformer) keep their fresh initialisation: they do not change
what the re-exported graph computes.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import onnx
import torch
import yaml
from onnx import numpy_helper

from narvox.asr.build import build_model, save_model
from narvox.bundle import locate
from narvox.text.tokens import guess_form

GRAPH_PREFIX = "model."  # the export wraps the model in a graph module


def onnx_state_dict(onnx_path: Path) -> dict[str, torch.Tensor]:
    graph = onnx.load(str(onnx_path)).graph
    weights = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    state = {}
    for node in graph.node:
        if node.op_type == "MatMul" and node.input[1].startswith("onnx::MatMul"):
            biases = [i for c in consumers.get(node.output[0], []) if c.op_type == "Add"
                      for i in c.input if i.endswith(".bias") and i in weights]
            if len(biases) != 1:
                raise ValueError(f"cannot tell which Linear {node.input[1]} belongs to: {biases}")
            state[biases[0].removesuffix(".bias") + ".weight"] = weights[node.input[1]].T.contiguous()
    state.update({k: v for k, v in weights.items() if not k.startswith("onnx::")})
    return {k.removeprefix(GRAPH_PREFIX): v for k, v in state.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle", help="a bundle directory or a shipped bundle's name (ctc, paraformer)")
    p.add_argument("config", type=Path, help="the recipe config the bundle was trained with")
    p.add_argument("out", type=Path)
    args = p.parse_args()
    args.bundle = locate(args.bundle, "asr")
    config = yaml.safe_load(args.config.read_text())["model"]
    symbols = (args.bundle / "tokens.txt").read_text(encoding="utf-8").splitlines()
    model = build_model(config, len(symbols))
    recovered = onnx_state_dict(args.bundle / "model.onnx")
    # load_state_dict, not a comparison of names: the model's load hooks map the names of older
    # bundles to its own, and it refuses a shape that differs
    try:
        keys = model.load_state_dict(recovered, strict=False)
    except RuntimeError as e:
        raise SystemExit(f"bundle weights do not fit the model: {e}")
    if keys.unexpected_keys:
        raise SystemExit(f"bundle weights the model does not have: {sorted(keys.unexpected_keys)[:5]}")
    missing = sorted(keys.missing_keys)
    save_model(args.out, model, config)
    for name in ("tokens.txt", "am.mvn"):
        if (args.bundle / name).is_file():
            shutil.copy(args.bundle / name, args.out / name)
    # what `narvox export` reads beside the weights: the BPE symbol form (recorded by newer bundles,
    # told by the symbols in older ones) and the longest training utterance
    meta = json.loads((args.bundle / "narvox.json").read_text())
    form = meta.get("symbol_form") or guess_form([line.split()[0] for line in symbols])
    (args.out / "tokenizer.json").write_text(json.dumps({"kind": "bpe", "form": form}))
    if meta.get("max_seconds"):
        (args.out / "config.yaml").write_text(yaml.safe_dump(
            {"data": {"longest_utterance_seconds": meta["max_seconds"]}}))
    print(f"{args.out}: {len(recovered)} tensors recovered; left at initialisation: {missing}")


if __name__ == "__main__":
    main()
