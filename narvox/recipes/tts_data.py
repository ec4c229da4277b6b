"""TTS training data: phone ids (`text_phones`), codec codes (`codes_<codec>.bin`), speakers, and a
voice prompt for every item; duration-bucketed batches sharded across DDP ranks.

Prompts are VALL-E's cross-utterance ones: codes of ANOTHER utterance of the same speaker.
- aligned conditioning: a crop of `prompt_seconds` of it (the prompt carries the voice only);
- prefix conditioning: all of it (up to `prompt_max_seconds`) with its phones, since the text
  prefix must say what the prompt says; and for a share `same_utterance` of the items the first
  20-50 % of the item's own frames, the rest being the target (VALL-E's continuation).
Validation prompts are drawn from a generator seeded by the item, so every validation sees the
same ones.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from narvox.codecs.dump import CodesFile, codes_path
from narvox.data.kaldi import read_data_dir
from narvox.data.sampler import bucketed_loader
from narvox.errors import DataDirError
from narvox.text.tokens import TokenTable
from narvox.tts.core import pad_1d, pad_codes

log = logging.getLogger(__name__)


@dataclass
class PromptPolicy:
    prompt_seconds: float = 3.0
    prompt_max_seconds: float = 6.0
    same_utterance: float = 0.5


class TtsDataset(Dataset):
    def __init__(self, data_dir: str | Path, table: TokenTable, codec: dict, conditioning: str, n_codebooks: int,
                 policy: PromptPolicy = PromptPolicy(), train: bool = True, seed: int = 0):
        data = read_data_dir(data_dir)
        if "text_phones" not in data.extra:
            raise DataDirError(f"{data_dir}: no text_phones (run the recipe's phones stage)")
        codes = CodesFile(codes_path(data_dir, codec["codec"]))
        codes.check_codec(codec)
        missing = [u for u in data.utt_ids if u not in codes]
        if missing:
            raise DataDirError(f"{codes.path}: no codes for {len(missing)} utterances of {data_dir} "
                               f"(e.g. {', '.join(missing[:3])}); run the codec-token stage again")
        self.frame_rate = codec["frame_rate"]
        self.conditioning, self.policy, self.train, self.seed = conditioning, policy, train, seed
        self.utts, self.phones, self.codes, self.speakers = [], [], [], []
        short, unknown = [], 0
        for utt in data.utt_ids:
            ids = np.array([table[p] for p in data.extra["text_phones"][utt].split()], dtype=np.int64)
            unknown += int((ids == table.unk_id).sum())
            c = codes[utt][:n_codebooks]
            if c.shape[0] < n_codebooks:
                raise DataDirError(f"{codes.path}: {utt} has {c.shape[0]} codebooks, the model needs {n_codebooks}")
            if c.shape[1] < len(ids) + 2:  # the aligner needs a frame per phone; a prefix split needs 2 more
                short.append(utt)
                continue
            self.utts.append(utt)
            self.phones.append(ids)
            self.codes.append(c.astype(np.int16 if c.max() < 2**15 else np.int32))
            self.speakers.append(data.utt2spk[utt])
        if short:
            log.warning("%s: left out %d utterances with fewer codec frames than phones + 2 (e.g. %s)",
                        data_dir, len(short), ", ".join(short[:3]))
        if unknown:
            log.warning("%s: %d phones are not in the phone vocabulary and read as <unk>", data_dir, unknown)
        if not self.utts:
            raise DataDirError(f"{data_dir}: no utterance is long enough to train on")
        by_speaker: dict[str, list[int]] = {}
        for i, spk in enumerate(self.speakers):
            by_speaker.setdefault(spk, []).append(i)
        max_frames = policy.prompt_max_seconds * self.frame_rate
        # per item, the other utterances of its speaker that can prompt it
        self.others = [[j for j in by_speaker[spk] if j != i] for i, spk in enumerate(self.speakers)]
        self.whole = [[j for j in o if self.codes[j].shape[1] <= max_frames] for o in self.others]
        self.durations = [c.shape[1] / self.frame_rate for c in self.codes]
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.utts)

    def _crop(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        n = int(self.policy.prompt_seconds * self.frame_rate)
        start = int(rng.integers(0, max(1, codes.shape[1] - n + 1)))
        return codes[:, start:start + n]

    def __getitem__(self, i: int) -> dict:
        rng = self.rng if self.train else np.random.default_rng(self.seed + i)
        codes, phones = self.codes[i], self.phones[i]
        empty = np.zeros(0, dtype=np.int64)
        if self.conditioning == "aligned":
            source = self.codes[rng.choice(self.others[i])] if self.others[i] else codes
            item = {"codes": codes, "phones": phones, "prompt": self._crop(source, rng), "prompt_phones": empty}
        elif self.whole[i] and rng.random() >= self.policy.same_utterance:
            j = int(rng.choice(self.whole[i]))
            item = {"codes": codes, "phones": phones, "prompt": self.codes[j], "prompt_phones": self.phones[j]}
        else:  # continuation: the item's own first frames prompt the rest, under the whole text
            split = int(rng.integers(max(1, int(0.2 * codes.shape[1])), max(2, int(0.5 * codes.shape[1]))))
            item = {"codes": codes[:, split:], "phones": phones, "prompt": codes[:, :split], "prompt_phones": empty}
        return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64)) for k, v in item.items()}


def collate(items: list[dict]) -> dict[str, torch.Tensor]:
    phones, phone_lens = pad_1d([x["phones"] for x in items])
    prompt_phones, prompt_phone_lens = pad_1d([x["prompt_phones"] for x in items])
    codes, code_lens = pad_codes([x["codes"] for x in items])
    prompt, prompt_lens = pad_codes([x["prompt"] for x in items])
    return {"phones": phones, "phone_lens": phone_lens, "codes": codes, "code_lens": code_lens,
            "prompt": prompt, "prompt_lens": prompt_lens, "prompt_phones": prompt_phones,
            "prompt_phone_lens": prompt_phone_lens}


class TtsDataModule(L.LightningDataModule):
    shards_by_rank = True  # DurationBatchSampler takes each rank's batches itself

    def __init__(self, train_dir: str, valid_dir: str, table: TokenTable, codec: dict, conditioning: str,
                 n_codebooks: int, max_seconds: float = 60.0, num_workers: int = 1, valid_utts: int = 200,
                 seed: int = 0, **policy):
        super().__init__()
        self.args = dict(table=table, codec=codec, conditioning=conditioning, n_codebooks=n_codebooks,
                         policy=PromptPolicy(**policy), seed=seed)
        self.train_dir, self.valid_dir = train_dir, valid_dir
        self.max_seconds, self.num_workers, self.valid_utts, self.seed = max_seconds, num_workers, valid_utts, seed

    def setup(self, stage: str | None = None) -> None:
        self.train = TtsDataset(self.train_dir, train=True, **self.args)
        self.valid = TtsDataset(self.valid_dir, train=False, **self.args)

    def _loader(self, ds: TtsDataset, shuffle: bool, limit: int | None = None) -> DataLoader:
        durations = ds.durations[:limit] if limit else ds.durations
        return bucketed_loader(ds, durations, self.max_seconds, collate, shuffle, self.seed, self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.valid, shuffle=False, limit=self.valid_utts)
