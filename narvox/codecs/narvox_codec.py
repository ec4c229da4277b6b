"""The narvox codec as a `Codec`, loaded from a model directory (codec.yaml + model.pt)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import yaml

from narvox.codecs.base import Codec
from narvox.codecs.model import CodecConfig, CodecModel
from narvox.errors import NarvoxError

# EMA statistics that only training reads; a shipped model leaves them out
TRAINING_ONLY = ("cluster_size", "embed_avg")


class NarvoxCodec(Codec):
    name = "narvox"

    def __init__(self, model: CodecModel, weights_id: str, n_codebooks: int | None = None):
        self.model = model.eval()
        c = model.config
        self.sample_rate, self.frame_rate = c.sample_rate, c.frame_rate
        self.codebook_size, self.max_codebooks = c.codebook_size, c.n_codebooks
        self.n_codebooks = c.n_codebooks
        self.context_frames = c.context_frames
        if n_codebooks is not None:
            self.set_codebooks(n_codebooks)
        self._weights_id = weights_id

    @property
    def weights_id(self) -> str:
        return self._weights_id

    @classmethod
    def load(cls, model_dir: str | Path, n_codebooks: int | None = None,
             bandwidth: float | None = None) -> "NarvoxCodec":
        model_dir = Path(model_dir)
        config_path, weights = model_dir / "codec.yaml", model_dir / "model.pt"
        for f in (config_path, weights):
            if not f.is_file():
                raise NarvoxError(f"{model_dir} is not a narvox codec directory: {f.name} is missing")
        config = yaml.safe_load(config_path.read_text())
        model = CodecModel(CodecConfig(**config["model"]))
        state = torch.load(weights, map_location="cpu", weights_only=True)
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        missing = [k for k in missing if not k.endswith(TRAINING_ONLY)]
        if missing or unexpected:
            raise NarvoxError(f"{weights} does not fit {config_path}: missing {missing[:3]}, "
                              f"unexpected {unexpected[:3]}")
        codec = cls(model, hashlib.sha256(weights.read_bytes()).hexdigest()[:16], n_codebooks)
        if bandwidth is not None:
            codec.set_codebooks(codec.codebooks_for(bandwidth))
        return codec

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        return self.model.encode(wav, self.n_codebooks)

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode(codes)


def save_codec_dir(model: CodecModel, out_dir: str | Path, half: bool = True) -> Path:
    """Write a model directory: codec.yaml and the inference weights (float16 halves the size;
    the decoded audio changes by far less than the codec's own error). The distillation head
    serves training only and stays out (semantic_dim 0)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config = {**model.config.to_dict(), "semantic_dim": 0}
    (out_dir / "codec.yaml").write_text(yaml.safe_dump({"codec": "narvox", "model": config}, sort_keys=False))
    state = {k: (v.half() if half and v.is_floating_point() else v).clone()
             for k, v in model.state_dict().items()
             if not k.endswith(TRAINING_ONLY) and not k.startswith("semantic.")}
    torch.save(state, out_dir / "model.pt")
    return out_dir
