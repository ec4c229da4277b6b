"""Datasets and the Lightning data module for ASR training over dumped fbank."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from narvox.asr.frontend import AsrFrontend
from narvox.data.augment import VocalTract, WaveAugment
from narvox.data.feats_dump import FbankDump
from narvox.data.kaldi import read_data_dir
from narvox.data.sampler import bucketed_loader
from narvox.errors import AudioError, TextError
from narvox.features import fbank
from narvox.text.tokens import Tokenizer


@dataclass
class SpecAugment:
    """Frequency and time masks on fbank (Park et al. 2019), applied before LFR."""
    freq_masks: int = 2
    freq_width: int = 15
    time_masks: int = 2
    time_width: float = 0.05  # share of the utterance
    seed: int | None = None

    def __call__(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        feats = feats.copy()
        t, f = feats.shape
        for _ in range(self.freq_masks):
            w = rng.integers(0, self.freq_width + 1)
            start = rng.integers(0, max(1, f - w))
            feats[:, start:start + w] = 0.0
        for _ in range(self.time_masks):
            w = rng.integers(0, int(t * self.time_width) + 1)
            start = rng.integers(0, max(1, t - w))
            feats[start:start + w] = feats.mean()
        return feats


class AsrDataset(Dataset):
    """(features, token ids) of every utterance of a dump dir: the dumped fbank, or, with a
    waveform `augment` config (narvox.data.augment), fbank of the augmented audio, computed as
    the item is loaded. Item i's n-th load in a process draws from the seed (seed, i, n); its
    first `clean_epochs` loads skip the augmentation (with one loader worker, as the recipes
    run, the n-th load is the n-th epoch)."""

    def __init__(self, dump_dir: str | Path, tokenizer: Tokenizer, frontend: AsrFrontend,
                 spec_augment: SpecAugment | None = None, augment: dict | None = None,
                 vocal_tract: dict | None = None, seed: int = 0, clean_epochs: int = 0):
        self.dump = FbankDump(dump_dir)
        self.tokenizer, self.frontend, self.spec_augment = tokenizer, frontend, spec_augment
        self.audio = None
        if augment:
            if not (Path(dump_dir) / "wav.scp").is_file():
                raise FileNotFoundError(f"{dump_dir}: no wav.scp, so its audio cannot be augmented "
                                        "(dumps made before augmentation lack it: re-run the fbank stage)")
            self.audio = read_data_dir(dump_dir)
        self.augment = WaveAugment(augment, babble_source=self._babble) if augment else None
        self.vocal_tract = VocalTract(**{k: tuple(v) if isinstance(v, list) else v
                                         for k, v in vocal_tract.items()}) if vocal_tract else None
        self.seed, self.loads, self.clean_epochs = seed, {}, clean_epochs
        self.utts = self.dump.utts
        self.targets = []
        for utt in self.utts:
            ids = tokenizer.encode(self.dump.text[utt])
            if not ids:
                raise TextError(f"{dump_dir}: utterance {utt} has an empty transcript")
            self.targets.append(ids)
        self.durations = [self.dump.index[u][1] * 0.01 for u in self.utts]

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> tuple[np.ndarray, list[int]]:
        n = self.loads[i] = self.loads.get(i, -1) + 1
        rng = np.random.default_rng([self.seed, i, n])
        utt = self.utts[i]
        # a fresh model leaves the CTC plateau sooner on clean audio: augment once it has
        augmenting = n >= self.clean_epochs
        if self.augment is None or not augmenting:
            feats = self.dump[utt]
        else:
            config = self.dump.fbank_config
            samples, _ = self.audio.load_audio(utt, sample_rate=config.sample_rate)
            try:
                feats = fbank(self.augment(samples, config.sample_rate, rng), config)
            except AudioError as e:
                raise AudioError(f"utterance {utt} (augmented): {e}") from None
        if self.vocal_tract is not None and augmenting and rng.random() < self.vocal_tract.p:
            feats = self.vocal_tract(feats, rng)
        if self.spec_augment is not None:
            feats = self.spec_augment(feats, rng)
        return self.frontend.from_fbank(feats), self.targets[i]

    def _babble(self, k: int, rng: np.random.Generator) -> list[np.ndarray]:
        """k other utterances of the set, for babble noise."""
        rate = self.dump.fbank_config.sample_rate
        return [self.audio.load_audio(self.utts[j], sample_rate=rate)[0]
                for j in rng.choice(len(self.utts), size=min(k, len(self.utts)), replace=False)]


def collate(batch: list[tuple[np.ndarray, list[int]]]) -> dict[str, torch.Tensor]:
    feat_lens = torch.tensor([len(f) for f, _ in batch])
    target_lens = torch.tensor([len(t) for _, t in batch])
    feats = torch.zeros(len(batch), int(feat_lens.max()), batch[0][0].shape[1])
    targets = torch.full((len(batch), int(target_lens.max())), -1, dtype=torch.long)
    for i, (f, t) in enumerate(batch):
        feats[i, :len(f)] = torch.from_numpy(f)
        targets[i, :len(t)] = torch.tensor(t)
    return {"feats": feats, "feat_lens": feat_lens, "targets": targets, "target_lens": target_lens}


class AsrDataModule(L.LightningDataModule):
    shards_by_rank = True  # DurationBatchSampler takes each rank's batches itself

    def __init__(self, train_dir: str, valid_dir: str, tokenizer: Tokenizer, frontend: AsrFrontend,
                 max_seconds: float = 200.0, num_workers: int = 1, spec_augment: bool = True,
                 augment: dict | None = None, vocal_tract: dict | None = None, seed: int = 0,
                 clean_epochs: int = 0):
        super().__init__()
        self.train_dir, self.valid_dir = train_dir, valid_dir
        self.tokenizer, self.frontend = tokenizer, frontend
        self.max_seconds, self.num_workers, self.seed = max_seconds, num_workers, seed
        self.spec_augment = SpecAugment() if spec_augment else None
        self.augment, self.vocal_tract, self.clean_epochs = augment, vocal_tract, clean_epochs

    def setup(self, stage: str | None = None) -> None:
        # augmentation is for training only: validation scores the clean set
        self.train = AsrDataset(self.train_dir, self.tokenizer, self.frontend, self.spec_augment, self.augment,
                                self.vocal_tract, self.seed, self.clean_epochs)
        self.valid = AsrDataset(self.valid_dir, self.tokenizer, self.frontend)

    def _loader(self, ds: AsrDataset, shuffle: bool) -> DataLoader:
        return bucketed_loader(ds, ds.durations, self.max_seconds, collate, shuffle, self.seed, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid, shuffle=False)
