"""EnCodec (Meta's `encodec` package) as a `Codec`: the 24 kHz model, 75 frames/s, codebooks of 1024,
bandwidth 1.5 / 3 / 6 / 12 / 24 kbps = 2 / 4 / 8 / 16 / 32 codebooks.

The weights are never downloaded here: they come from a file you give, or from torch hub's cache
where `encodec` itself would have saved them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from encodec import EncodecModel

from narvox.codecs.base import Codec
from narvox.errors import NarvoxError

CHECKPOINT = "encodec_24khz-d7cc33bc.th"
URL = f"https://dl.fbaipublicfiles.com/encodec/v0/{CHECKPOINT}"
BANDWIDTHS = (1.5, 3.0, 6.0, 12.0, 24.0)


def default_checkpoint() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / CHECKPOINT


class EncodecCodec(Codec):
    name = "encodec_24khz"

    def __init__(self, bandwidth: float = 6.0, checkpoint: str | Path | None = None):
        if bandwidth not in BANDWIDTHS:
            raise NarvoxError(f"EnCodec 24 kHz serves bandwidths {BANDWIDTHS} kbps, not {bandwidth}")
        path = Path(checkpoint) if checkpoint else default_checkpoint()
        if not path.is_file():
            raise NarvoxError(
                f"EnCodec 24 kHz weights not found at {path}. narvox never downloads them: fetch {URL} "
                f"on a connected machine and put it at {default_checkpoint()} (torch hub's cache), "
                f"or pass checkpoint=<path to {CHECKPOINT}>")
        self.model = EncodecModel.encodec_model_24khz(pretrained=False)
        try:
            self.model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        except (RuntimeError, ValueError, OSError) as e:  # wrong file, truncated download
            raise NarvoxError(f"{path} is not an EnCodec 24 kHz checkpoint: {e}") from None
        self.model.eval()
        self.sample_rate = self.model.sample_rate
        self.frame_rate = self.sample_rate / self.model.encoder.hop_length
        self.codebook_size = self.model.quantizer.bins
        self.max_codebooks = self.model.quantizer.n_q
        self.n_codebooks = self.codebooks_for(bandwidth)
        self.model.set_target_bandwidth(bandwidth)
        self._weights_id = hashlib.sha256(path.read_bytes()).hexdigest()[:16]

    @property
    def weights_id(self) -> str:
        return self._weights_id

    def set_codebooks(self, n: int) -> None:
        super().set_codebooks(n)
        self.model.set_target_bandwidth(self.bitrate_kbps)

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        # the 24 kHz model encodes the whole input as one frame (no chunking, no normalisation)
        [(codes, _)] = self.model.encode(wav[:, None])
        return codes

    def _decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.model.decode([(codes, None)])[:, 0]
