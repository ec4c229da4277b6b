"""Kaldi data directories: read, write, subset, combine, speed-perturb, utt2dur.

Files follow egs/wsj/s5/utils conventions: `wav.scp`, `text`, `utt2spk`, `spk2utt`, optional
`segments` (then wav.scp is keyed by recording) and `utt2dur`. The other tables keyed by utterance
that narvox writes (`text_raw`, `utt2gender`, `utt2lang`) are carried along unchanged. What a
directory must satisfy, and how `narvox data validate` and `fix` check and repair it, is in
narvox.data.rules. Everything narvox writes passes Kaldi's
`utils/validate_data_dir.sh --no-feats --non-print`.
"""
from __future__ import annotations

import logging
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from narvox import audio
from narvox.data.rules import EXTRA_TABLES, c_sort_key, load_tables, problems_in, validate_data_dir
from narvox.errors import AudioError, DataDirError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Segment:
    recording: str
    start: float
    end: float


@dataclass
class DataDir:
    """An in-memory Kaldi data directory. Tables map ids to values; order is restored on write."""
    wav_scp: dict[str, str]
    text: dict[str, str]
    utt2spk: dict[str, str]
    segments: dict[str, Segment] | None = None
    utt2dur: dict[str, float] | None = None
    extra: dict[str, dict[str, str]] = field(default_factory=dict)

    # ---- views -------------------------------------------------------------------------------
    @property
    def utt_ids(self) -> list[str]:
        return sorted(self.utt2spk, key=c_sort_key)

    @property
    def speakers(self) -> list[str]:
        return sorted(set(self.utt2spk.values()), key=c_sort_key)

    @property
    def spk2utt(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for utt in self.utt_ids:
            out.setdefault(self.utt2spk[utt], []).append(utt)
        return {spk: out[spk] for spk in sorted(out, key=c_sort_key)}

    def __len__(self) -> int:
        return len(self.utt2spk)

    def audio_source(self, utt: str) -> tuple[str, float, float | None]:
        """(wav.scp value, start, end) of an utterance."""
        if self.segments is not None:
            seg = self.segments[utt]
            return self.wav_scp[seg.recording], seg.start, seg.end
        return self.wav_scp[utt], 0.0, None

    def load_audio(self, utt: str, sample_rate: int | None = None):
        spec, start, end = self.audio_source(utt)
        try:
            return audio.read_audio(spec, sample_rate=sample_rate, start=start, end=end, allow_pipe=True)
        except AudioError as e:
            raise AudioError(f"utterance {utt}: {e}") from None

    def total_seconds(self) -> float:
        return sum(self.durations().values())

    def durations(self, nj: int = 1) -> dict[str, float]:
        if self.utt2dur is None:
            self.utt2dur = compute_utt2dur(self, nj=nj)
        return self.utt2dur

    # ---- building new directories --------------------------------------------------------------
    def subset(self, utt_ids: Iterable[str]) -> "DataDir":
        keep = set(utt_ids)
        unknown = keep - self.utt2spk.keys()
        if unknown:
            raise DataDirError(f"subset asks for {len(unknown)} utterances not in the data, "
                               f"e.g. {sorted(unknown)[:3]}")
        pick = lambda table: None if table is None else {k: v for k, v in table.items() if k in keep}
        segments = pick(self.segments)
        recordings = {s.recording for s in segments.values()} if segments is not None else keep
        return DataDir(
            wav_scp={k: v for k, v in self.wav_scp.items() if k in recordings},
            text=pick(self.text), utt2spk=pick(self.utt2spk), segments=segments,
            utt2dur=pick(self.utt2dur), extra={name: pick(t) for name, t in self.extra.items()})

    def subset_speakers(self, speakers: Iterable[str]) -> "DataDir":
        spks = set(speakers)
        return self.subset(u for u, s in self.utt2spk.items() if s in spks)


def combine(dirs: list[DataDir]) -> DataDir:
    """Union of data directories; an id present in two with different content is an error."""
    if not dirs:
        raise DataDirError("combine needs at least one data directory")
    if len({d.segments is None for d in dirs}) > 1:
        raise DataDirError("cannot combine directories with and without segments")

    def merge(name: str, tables: list[dict | None]):
        if any(t is None for t in tables):
            return None
        out: dict = {}
        for t in tables:
            for k, v in t.items():
                if k in out and out[k] != v:
                    raise DataDirError(f"combine: '{k}' has different {name} entries: "
                                       f"'{out[k]}' and '{v}'")
                out[k] = v
        return out

    extras = set.intersection(*(set(d.extra) for d in dirs))
    return DataDir(
        wav_scp=merge("wav.scp", [d.wav_scp for d in dirs]),
        text=merge("text", [d.text for d in dirs]),
        utt2spk=merge("utt2spk", [d.utt2spk for d in dirs]),
        segments=merge("segments", [d.segments for d in dirs]),
        utt2dur=merge("utt2dur", [d.utt2dur for d in dirs]),
        extra={name: merge(name, [d.extra[name] for d in dirs]) for name in extras})


def speed_perturb(data: DataDir, factor: float) -> DataDir:
    """Kaldi's perturb_data_dir_speed: audio piped through `sox speed`, ids and speakers prefixed
    `sp<factor>-` so they stay unique and sorted when combined with the original."""
    if data.segments is not None:
        raise DataDirError("speed perturbation of segmented data is not supported; "
                           "extract the segments first")
    prefix = f"sp{factor:g}-"
    quote = lambda spec: spec[:-1].strip() + " |" if spec.endswith("|") else f"cat {shlex.quote(spec)} |"
    return DataDir(
        wav_scp={prefix + u: f"{quote(s)} sox -t {_sox_type(s)} - -t wav - speed {factor:g} |"
                 for u, s in data.wav_scp.items()},
        text={prefix + u: t for u, t in data.text.items()},
        utt2spk={prefix + u: prefix + s for u, s in data.utt2spk.items()},
        utt2dur=None if data.utt2dur is None else {prefix + u: d / factor for u, d in data.utt2dur.items()},
        extra={n: {prefix + u: v for u, v in t.items()} for n, t in data.extra.items()})


def _sox_type(spec: str) -> str:
    """The container sox must expect on stdin: a pipe's output is WAV, a file's is its suffix."""
    return "wav" if spec.endswith("|") else Path(spec).suffix.lstrip(".").lower() or "wav"


def compute_utt2dur(data: DataDir, nj: int = 1) -> dict[str, float]:
    """Duration of every utterance: from segments, else from audio headers (pipes are decoded)."""
    if data.segments is not None:
        return {u: s.end - s.start for u, s in data.segments.items()}
    utts = data.utt_ids

    def one(utt: str) -> float:
        try:
            return audio.duration(data.wav_scp[utt], allow_pipe=True)
        except AudioError as e:
            raise AudioError(f"utterance {utt}: {e}") from None

    with ThreadPoolExecutor(max(1, nj)) as pool:
        durs = list(tqdm(pool.map(one, utts), total=len(utts), desc="utt2dur", leave=False,
                         disable=len(utts) < 200))
    return dict(zip(utts, durs))


# ---- file level ----------------------------------------------------------------------------------
def _write_table(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    rows = sorted(rows, key=lambda kv: c_sort_key(kv[0]))
    path.write_text("".join(f"{k} {v}".rstrip(" ") + "\n" for k, v in rows), encoding="utf-8")


def write_data_dir(data: DataDir, path: str | Path) -> Path:
    """Write every table sorted as Kaldi wants; refuse to leave an invalid directory behind."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for stale in ("segments", "utt2dur", *EXTRA_TABLES):
        (path / stale).unlink(missing_ok=True)
    _write_table(path / "wav.scp", data.wav_scp.items())
    _write_table(path / "text", data.text.items())
    _write_table(path / "utt2spk", data.utt2spk.items())
    _write_table(path / "spk2utt", ((s, " ".join(u)) for s, u in data.spk2utt.items()))
    if data.segments is not None:
        _write_table(path / "segments", ((u, f"{s.recording} {s.start:.3f} {s.end:.3f}")
                                         for u, s in data.segments.items()))
    if data.utt2dur is not None:
        _write_table(path / "utt2dur", ((u, f"{d:.3f}") for u, d in data.utt2dur.items()))
    for name, table in data.extra.items():
        _write_table(path / name, table.items())
    problems = validate_data_dir(path)
    if problems:
        raise DataDirError(f"narvox wrote an invalid data directory {path}:\n"
                           + "\n".join(map(str, problems)))
    return path


def read_data_dir(path: str | Path) -> DataDir:
    """Load a data directory, refusing an invalid one with every problem listed."""
    path = Path(path)
    tables = load_tables(path)
    problems = problems_in(tables)
    if problems:
        raise DataDirError(f"invalid data directory {path} (run `narvox data fix {path}`):\n"
                           + "\n".join(f"  {p}" for p in problems))
    table = lambda name: {line.key: line.value for line in tables[name].lines}
    segments = None
    if "segments" in tables:
        segments = {line.key: Segment(line.fields[1], float(line.fields[2]), float(line.fields[3]))
                    for line in tables["segments"].lines}
    utt2dur = {k: float(v) for k, v in table("utt2dur").items()} if "utt2dur" in tables else None
    return DataDir(wav_scp=table("wav.scp"), text=table("text"), utt2spk=table("utt2spk"),
                   segments=segments, utt2dur=utt2dur,
                   extra={n: table(n) for n in EXTRA_TABLES if n in tables})


def write_corpus_part(corpus: str, part_dir: Path, problems: list[str], wav: dict[str, str], text: dict[str, str],
                      raw: dict[str, str], utt2spk: dict[str, str], out_dir: str | Path, expected: str) -> DataDir:
    """The last step of a corpus importer (LibriSpeech, LibriTTS): refuse a part with problems,
    listing every one, or none of the `expected` files; else write its data dir (`text_raw` the
    transcript as the corpus spells it)."""
    if problems:
        raise DataDirError(f"{corpus} {part_dir.name} in {part_dir} is inconsistent:\n" + "\n".join(problems))
    if not wav:
        raise DataDirError(f"{part_dir}: no {expected} found")
    data = DataDir(wav_scp=wav, text=text, utt2spk=utt2spk, extra={"text_raw": raw})
    write_data_dir(data, out_dir)
    log.info("%s: %d utterances, %d speakers -> %s", part_dir.name, len(data), len(data.speakers), out_dir)
    return data
