"""Codec tokens of a whole data directory, encoded once and stored beside it.

One file per data directory, `codes_<codec>.bin`:
    magic line, one JSON line (the codec's identity), then one record per utterance:
    uint16 id length, uint16 codebooks Q, uint32 frames F, the id (UTF-8), Q*F uint16 codes.
Records are appended batch by batch, so a killed dump resumes: a torn last record is cut off
and the utterances already stored are skipped. Readers compare the stored identity with their
codec and refuse codes from any other one.
"""
from __future__ import annotations

import json
import logging
import struct
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from narvox.data.kaldi import read_data_dir
from narvox.errors import NarvoxError

log = logging.getLogger(__name__)
MAGIC = b"NARVOX-CODES 1\n"
RECORD = struct.Struct("<HHI")


def codes_path(data_dir: str | Path, codec_name: str) -> Path:
    return Path(data_dir) / f"codes_{codec_name}.bin"


class CodesFile:
    """Read access: `identity`, `utts`, `codes[utt] -> int64 [Q, F]`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise NarvoxError(f"{self.path}: no codes file (dump the codec tokens first)")
        self.identity, self.index, end = _scan(self.path)
        if end != self.path.stat().st_size:
            raise NarvoxError(f"{self.path}: the last record is incomplete (the dump was interrupted; "
                              f"run it again to finish)")

    @property
    def utts(self) -> list[str]:
        return list(self.index)

    def __contains__(self, utt: str) -> bool:
        return utt in self.index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, utt: str) -> np.ndarray:
        if utt not in self.index:
            raise NarvoxError(f"{self.path}: no codes for utterance {utt}")
        offset, q, f = self.index[utt]
        with open(self.path, "rb") as fh:
            fh.seek(offset)
            data = np.frombuffer(fh.read(2 * q * f), dtype="<u2")
        return data.reshape(q, f).astype(np.int64)

    def check_codec(self, identity: dict) -> None:
        """Refuse codes written by a different codec (other weights, rate or codebook size)."""
        if self.identity != identity:
            differ = {k: (self.identity.get(k), identity.get(k)) for k in identity | self.identity
                      if self.identity.get(k) != identity.get(k)}
            raise NarvoxError(f"{self.path} holds codes of another codec: stored vs wanted {differ}")


def _scan(path: Path) -> tuple[dict, dict[str, tuple[int, int, int]], int]:
    """(identity, utt -> (data offset, Q, F), end of the last complete record)."""
    index: dict[str, tuple[int, int, int]] = {}
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if fh.read(len(MAGIC)) != MAGIC:
            raise NarvoxError(f"{path} is not a narvox codes file")
        identity = json.loads(fh.readline())
        end = fh.tell()
        while True:
            head = fh.read(RECORD.size)
            if len(head) < RECORD.size:
                break
            n_id, q, f = RECORD.unpack(head)
            utt = fh.read(n_id).decode()
            offset = fh.tell()
            if offset + 2 * q * f > size or len(utt.encode()) != n_id:
                break
            fh.seek(2 * q * f, 1)
            index[utt] = (offset, q, f)
            end = fh.tell()
    return identity, index, end


def dump_codes(data_dir: str | Path, codec, path: str | Path | None = None, batch_seconds: float = 60.0) -> Path:
    """Encode every utterance of `data_dir` with `codec` (a narvox Codec or runtime OnnxCodec)."""
    data = read_data_dir(data_dir)
    path = Path(path) if path else codes_path(data_dir, codec.name)
    identity = codec.identity()
    if codec.codebook_size > 65536:
        raise NarvoxError(f"{codec.name}: codebooks of {codec.codebook_size} do not fit the uint16 codes file")
    done: set[str] = set()
    if path.is_file() and path.stat().st_size > 0:
        stored, index, end = _scan(path)
        if stored != identity:
            raise NarvoxError(f"{path} holds codes of another codec ({stored}); delete it to re-dump with {identity}")
        done = set(index)
        with open(path, "r+b") as fh:
            fh.truncate(end)  # a record torn by a kill
        log.info("%s: resuming, %d of %d utterances already encoded", path, len(done), len(data))
    else:
        path.write_bytes(MAGIC + json.dumps(identity, sort_keys=True).encode() + b"\n")
    durations = data.durations()
    todo = sorted((u for u in data.utt_ids if u not in done), key=lambda u: durations[u])
    start, n_done = time.time(), 0
    # progress on stderr: a large data dir takes many minutes
    with open(path, "ab") as fh, tqdm(total=len(todo), desc=path.name, unit="utt", disable=None) as bar:
        for batch in _batches(todo, durations, batch_seconds):
            wavs = [data.load_audio(u, codec.sample_rate)[0] for u in batch]
            # zero padding leaves each row's codes as they are alone (the codec's rule). At least as
            # many samples as rows: encode refuses a batch of more rows than samples as transposed
            width = max(max(len(w) for w in wavs), len(wavs))
            padded = np.stack([np.pad(w, (0, width - len(w))) for w in wavs])
            codes = np.asarray(codec.encode(padded))
            for utt, wav, c in zip(batch, wavs, codes):
                c = np.ascontiguousarray(c[:, : codec.num_frames(len(wav))], dtype="<u2")
                uid = utt.encode()
                fh.write(RECORD.pack(len(uid), c.shape[0], c.shape[1]) + uid + c.tobytes())
            fh.flush()
            n_done += len(batch)
            bar.update(len(batch))
    if todo:
        log.info("%s: encoded %d utterances in %.1f s", path, n_done, time.time() - start)
    return path


def _batches(utts: list[str], durations: dict[str, float], batch_seconds: float):
    batch: list[str] = []
    for utt in utts:  # sorted by duration: the padded size is the last one's
        if batch and durations[utt] * (len(batch) + 1) > batch_seconds:
            yield batch
            batch = []
        batch.append(utt)
    if batch:
        yield batch
