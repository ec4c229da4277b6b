"""Waveform -> model input, identical in training, in narvox.runtime and in the exported bundles.

CTC/attention models take 80-dim Kaldi-preset fbank and normalise inside the graph (WeNet and
sherpa-onnx's WeNet CTC); Paraformer takes LFR-stacked FunASR-preset fbank normalised by `am.mvn`.
Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from narvox.features import Cmvn, FbankConfig, apply_lfr, fbank

FBANK_PRESET = {"ctc_attention": "kaldi", "paraformer": "funasr"}  # by model kind


@dataclass
class AsrFrontend:
    lfr_m: int = 1
    lfr_n: int = 1
    cmvn: Cmvn | None = None
    fbank_config: FbankConfig = FbankConfig()

    @property
    def sample_rate(self) -> int:
        return self.fbank_config.sample_rate

    @property
    def dim(self) -> int:
        return self.fbank_config.num_mel_bins * self.lfr_m

    def from_fbank(self, feats: np.ndarray) -> np.ndarray:
        if self.lfr_m > 1 or self.lfr_n > 1:
            feats = apply_lfr(feats, self.lfr_m, self.lfr_n)
        return self.cmvn(feats) if self.cmvn is not None else feats

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        return self.from_fbank(fbank(samples, self.fbank_config))

    @classmethod
    def for_model(cls, kind: str, model_dir: str | Path | None = None, lfr_m: int = 7, lfr_n: int = 6):
        if kind != "paraformer":
            return cls(fbank_config=FbankConfig.preset(FBANK_PRESET[kind]))
        cmvn = None
        if model_dir is not None and (Path(model_dir) / "am.mvn").is_file():
            cmvn = Cmvn.load(Path(model_dir) / "am.mvn")
        return cls(lfr_m=lfr_m, lfr_n=lfr_n, cmvn=cmvn)
