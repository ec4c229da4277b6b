"""Build ASR models from config dicts, and save/load model directories.

A model directory holds `model.pt` (kind, config, state dict), the tokenizer (`tokens.txt`,
`tokenizer.json`, `bpe.model`) and, for Paraformer, `am.mvn`.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch
import yaml
from torch import nn

from narvox import registry
from narvox.errors import NarvoxError
from narvox.models.conformer import EncoderConfig
from narvox.models.transformer import DecoderConfig


def build_model(config: dict, vocab_size: int) -> nn.Module:
    """config: {kind (a training kind of narvox.registry), encoder: {...}, decoder: {...}, other
    fields of the kind's config class}."""
    config = copy.deepcopy(config)
    kind = registry.training_kind(config.pop("kind", None))
    if kind.family != "asr":
        raise NarvoxError(f"'{kind.name}' is not an ASR model kind")
    encoder = EncoderConfig(**config.pop("encoder", {}))
    decoder = DecoderConfig(**config.pop("decoder", {}))
    c = registry.load(kind.config)(vocab_size, encoder, decoder, **config)
    if kind.lfr:  # LFR-stacked fbank comes in through a linear layer, not 4x subsampling
        c.encoder.input_dim = 80 * c.lfr_m
        c.encoder.input_layer = "linear"
    return registry.load(kind.model)(c)


def save_model(directory: str | Path, model: nn.Module, config: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "vocab_size": model.config.vocab_size,
                "state_dict": model.state_dict()}, directory / "model.pt")
    return directory


def longest_training_utterance(model_dir: str | Path) -> float | None:
    """Seconds of the longest utterance the model was trained on (recorded by the trainer in
    config.yaml), or None for a model trained before it was recorded."""
    config = Path(model_dir) / "config.yaml"
    if not config.is_file():
        return None
    return (yaml.safe_load(config.read_text()).get("data") or {}).get("longest_utterance_seconds")


def load_model(directory: str | Path) -> tuple[nn.Module, dict]:
    directory = Path(directory)
    if not (directory / "model.pt").is_file():
        raise FileNotFoundError(f"{directory}: no model.pt")
    saved = torch.load(directory / "model.pt", map_location="cpu", weights_only=False)
    model = build_model(saved["config"], saved["vocab_size"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved["config"]
