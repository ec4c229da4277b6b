"""Waveform -> model input, identical in training, in narvox.runtime and in the exported bundles.

CTC/attention models take 80-dim Kaldi-preset fbank and normalise inside the graph (WeNet and
sherpa-onnx's WeNet CTC); Paraformer takes LFR-stacked FunASR-preset fbank normalised by `am.mvn`.
Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from narvox import registry
from narvox.bundle import Bundle
from narvox.features import Cmvn, FbankConfig, apply_lfr, fbank


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

    def settings(self) -> dict:
        """What a bundle records of its frontend (its am.mvn goes in a file of its own)."""
        return {"sample_rate": self.sample_rate, "fbank": self.fbank_config.to_dict(),
                "lfr_m": self.lfr_m, "lfr_n": self.lfr_n}

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> "AsrFrontend":
        s = bundle.settings
        cmvn = Cmvn.load(bundle.file("cmvn")) if "cmvn" in bundle.files else None
        return cls(s["lfr_m"], s["lfr_n"], cmvn, FbankConfig(**s["fbank"]))

    @classmethod
    def for_model(cls, kind: str, model_dir: str | Path | None = None, lfr_m: int = 7, lfr_n: int = 6):
        """The frontend a model of training kind `kind` is trained on; an LFR model's am.mvn is
        read from `model_dir` when it is there."""
        trained = registry.training_kind(kind)
        config = FbankConfig.preset(trained.fbank)
        if not trained.lfr:
            return cls(fbank_config=config)
        cmvn = None
        if model_dir is not None and (Path(model_dir) / "am.mvn").is_file():
            cmvn = Cmvn.load(Path(model_dir) / "am.mvn")
        return cls(lfr_m=lfr_m, lfr_n=lfr_n, cmvn=cmvn, fbank_config=config)

    @classmethod
    def for_config(cls, config: dict, model_dir: str | Path | None = None) -> "AsrFrontend":
        """The frontend of a saved model config ({kind, lfr_m, lfr_n, ...})."""
        return cls.for_model(config["kind"], model_dir, config.get("lfr_m", 7), config.get("lfr_n", 6))
