"""Build TTS backends from config dicts, and save/load model directories.

A model directory holds `model.pt` (kind, config, the codec it speaks, state dict) and the phone
vocabulary `tokens.txt`.
"""
from __future__ import annotations

import copy
from pathlib import Path

import torch

from narvox import registry
from narvox.errors import NarvoxError
from narvox.tts.core import TtsBackend, TtsConfig


def build_model(config: dict, n_phones: int) -> TtsBackend:
    """config: {kind (a TTS training kind of narvox.registry), the fields of TtsConfig}."""
    config = copy.deepcopy(config)
    kind = registry.training_kind(config.pop("kind", None))
    if kind.family != "tts":
        raise NarvoxError(f"'{kind.name}' is not a TTS model kind")
    return registry.load(kind.model)(TtsConfig(**config, n_phones=n_phones))


def save_model(directory: str | Path, model: TtsBackend, config: dict, codec: dict) -> Path:
    """codec: the identity of the codec whose tokens the model generates (narvox.codecs)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "n_phones": model.config.n_phones, "codec": codec,
                "state_dict": model.state_dict()}, directory / "model.pt")
    return directory


def load_model(directory: str | Path) -> tuple[TtsBackend, dict, dict]:
    """(model in eval mode, its config, its codec's identity)."""
    path = Path(directory) / "model.pt"
    if not path.is_file():
        raise NarvoxError(f"{directory}: no model.pt (not a TTS model directory)")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(saved["config"], saved["n_phones"])
    model.load_state_dict(saved["state_dict"])
    return model.eval(), saved["config"], saved["codec"]
