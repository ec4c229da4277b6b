"""A torch Dataset over a Kaldi data directory."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from narvox.data.kaldi import DataDir, read_data_dir


class UtteranceDataset(Dataset):
    """Items are dicts: `utt`, `speaker`, `text`, `audio` (float32 mono at `sample_rate`).

    Audio errors propagate with the utterance id in the message: a corrupt file stops training
    loudly instead of vanishing from the epoch.
    """

    def __init__(self, data: DataDir | str | Path, sample_rate: int = 16000, nj: int = 1):
        self.data = data if isinstance(data, DataDir) else read_data_dir(data)
        self.sample_rate = sample_rate
        self.utts = self.data.utt_ids
        durations = self.data.durations(nj=nj)
        self.durations = [durations[u] for u in self.utts]

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict:
        utt = self.utts[index]
        samples, _ = self.data.load_audio(utt, sample_rate=self.sample_rate)
        return {"utt": utt, "speaker": self.data.utt2spk[utt], "text": self.data.text[utt],
                "audio": samples}


def pad_audio(batch: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad 1-D arrays into [B, T] and return their lengths."""
    lengths = np.array([len(x) for x in batch], dtype=np.int64)
    out = np.zeros((len(batch), lengths.max()), dtype=batch[0].dtype)
    for i, x in enumerate(batch):
        out[i, :len(x)] = x
    return out, lengths
