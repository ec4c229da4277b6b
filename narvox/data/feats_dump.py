"""Fbank features of a data directory, computed once and stored beside the recipe.

Layout of a dump dir: `feats.npy` (all frames, float16, [N, 80]), `feats.index`
(`<utt> <first frame> <frames>` per line), `fbank.json` (the FbankConfig used) and a copy of the
data directory's tables (`text`, `wav.scp`, `utt2spk`, `spk2utt`, `segments`), so that training can go back
to the audio (on-the-fly augmentation).
"""
from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from narvox.data.kaldi import DataDir, read_data_dir
from narvox.errors import AudioError
from narvox.features import FbankConfig, fbank

log = logging.getLogger(__name__)

DATA_TABLES = ("text", "wav.scp", "utt2spk", "spk2utt", "segments")  # copied into the dump: a data dir of its own


def _fbank_of(args: tuple[DataDir, str, FbankConfig]) -> np.ndarray:
    data, utt, config = args
    samples, _ = data.load_audio(utt, sample_rate=config.sample_rate)
    try:
        return fbank(samples, config).astype(np.float16)
    except AudioError as e:
        raise AudioError(f"utterance {utt}: {e}") from None


def dump_fbank(data_dir: str | Path, out_dir: str | Path, nj: int = 2,
               config: FbankConfig = FbankConfig()) -> Path:
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    data = read_data_dir(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    utts = data.utt_ids
    with ProcessPoolExecutor(max(1, nj)) as pool:
        feats = list(tqdm(pool.map(_fbank_of, [(data, u, config) for u in utts], chunksize=16),
                          total=len(utts), desc=f"fbank {data_dir.name}", unit="utt"))
    offsets = np.cumsum([0] + [len(f) for f in feats])
    np.save(out_dir / "feats.npy", np.concatenate(feats))
    (out_dir / "feats.index").write_text(
        "".join(f"{u} {offsets[i]} {len(feats[i])}\n" for i, u in enumerate(utts)))
    for table in DATA_TABLES:
        if (data_dir / table).is_file():
            shutil.copy(data_dir / table, out_dir / table)
    (out_dir / "fbank.json").write_text(json.dumps(config.to_dict()))
    log.info("dumped %d utterances, %d frames to %s", len(utts), offsets[-1], out_dir)
    return out_dir


class FbankDump:
    """Read access to a dump dir; the big array is memory-mapped."""

    def __init__(self, path: str | Path):
        path = Path(path)
        if not (path / "feats.index").is_file():
            raise FileNotFoundError(f"{path}: no feats.index (run the feature dump stage first)")
        self.feats = np.load(path / "feats.npy", mmap_mode="r")
        self.index = {}
        for line in (path / "feats.index").read_text().splitlines():
            utt, start, n = line.split()
            self.index[utt] = (int(start), int(n))
        self.text = dict(l.split(maxsplit=1) if " " in l else (l, "")
                         for l in (path / "text").read_text(encoding="utf-8").splitlines())
        self.utts = list(self.index)
        self.fbank_config = FbankConfig(**json.loads((path / "fbank.json").read_text()))

    def __getitem__(self, utt: str) -> np.ndarray:
        start, n = self.index[utt]
        return np.asarray(self.feats[start:start + n], dtype=np.float32)
