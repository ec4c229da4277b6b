"""What the codec's first codebook is distilled from: the frame features of a trained narvox
recognizer's encoder, at the codec's frame rate.

SpeechTokenizer (arXiv 2308.16692) and Mimi (arXiv 2410.00037) make their first codebook carry
phonetic content by pulling it toward a self-supervised model's features; narvox has no such
model, but its own recognizers' encoders were trained to tell phones apart, which is the point.
A text model then finds codebook 1 predictable from the text, and the later codebooks carry the
voice and the acoustic detail.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from narvox.asr.build import load_model
from narvox.asr.frontend import AsrFrontend


class RecognizerFeatures:
    """A frozen ASR encoder: wav crops -> features [B, dim, frames]. Not an nn.Module on purpose:
    it lives in the data pipeline (the data loader's worker computes it beside training), and
    never in the codec's weights or checkpoints."""

    def __init__(self, model_dir: str | Path):
        model, config = load_model(model_dir)
        self.encoder = model.encoder.eval().requires_grad_(False)
        self.frontend = AsrFrontend.for_config(config, model_dir)
        # the width, read off an output rather than from the config (whose names differ by kind)
        self.dim = self(np.zeros((1, self.frontend.sample_rate), np.float32), 50).shape[1]

    @torch.no_grad()
    def __call__(self, wav: np.ndarray, frames: int) -> torch.Tensor:
        """[B, T] float audio of equal-length rows -> [B, dim, frames], the encoder's output
        linearly interpolated to `frames` evenly spaced frames (the codec's, over the same span)."""
        feats = np.stack([self.frontend(row) for row in wav])
        lengths = torch.full((len(feats),), feats.shape[1])
        hidden, _ = self.encoder(torch.from_numpy(feats), lengths)  # [B, T', dim]
        return F.interpolate(hidden.transpose(1, 2), size=frames, mode="linear", align_corners=False)
