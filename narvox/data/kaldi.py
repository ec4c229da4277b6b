"""Kaldi data directories: read, write, validate, fix, subset, combine, utt2dur.

Files follow egs/wsj/s5/utils conventions: `wav.scp`, `text`, `utt2spk`, `spk2utt`, optional
`segments` (then wav.scp is keyed by recording) and `utt2dur`. Any other two-column file keyed by
utterance (narvox writes `text_raw`) is carried along unchanged. Everything narvox writes passes
Kaldi's `utils/validate_data_dir.sh --no-feats --non-print`.
"""
from __future__ import annotations

import logging
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

from tqdm import tqdm

from narvox import audio
from narvox.errors import AudioError, DataDirError

log = logging.getLogger(__name__)

# files with a fixed meaning; any other plain file of "<utt> <value>" lines is an extra utterance table
KNOWN_FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "segments", "utt2dur")
EXTRA_TABLES = ("text_raw", "utt2gender", "utt2lang")
ILLEGAL_WORDS = {"<s>", "</s>", "#0"}
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def c_sort_key(s: str) -> bytes:
    """Order of `LC_ALL=C sort`: raw bytes."""
    return s.encode("utf-8")


@dataclass(frozen=True)
class Segment:
    recording: str
    start: float
    end: float


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data directory, located to a file and line where possible."""
    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


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
            return audio.read_audio(spec, sample_rate=sample_rate, start=start, end=end)
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
            return audio.duration(data.wav_scp[utt])
        except AudioError as e:
            raise AudioError(f"utterance {utt}: {e}") from None

    with ThreadPoolExecutor(max(1, nj)) as pool:
        durs = list(tqdm(pool.map(one, utts), total=len(utts), desc="utt2dur", leave=False,
                         disable=len(utts) < 200))
    return dict(zip(utts, durs))


# ---- file level ----------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8", errors="replace").split("\n")


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


def _parse(path: Path, min_fields: int, max_fields: int | None, problems: list[Problem]):
    """(line number, key, rest) of each well-formed line; malformed lines become problems."""
    rows = []
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        problems.append(Problem(path.name, "file does not end with a newline"))
    if b"\r" in raw:
        problems.append(Problem(path.name, "file has Windows (CR) line endings"))
    for n, line in enumerate(raw.decode("utf-8", errors="replace").rstrip("\n").split("\n"), 1):
        if not raw:
            break
        fields = line.split()
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            want = str(min_fields) if min_fields == max_fields else f"at least {min_fields}"
            problems.append(Problem(path.name, f"expected {want} fields, found {len(fields)}: '{line}'", n))
            continue
        if line != line.strip() or "  " in line.replace("\t", " "):
            problems.append(Problem(path.name, "extra white space around fields", n))
        rows.append((n, fields[0], line.split(maxsplit=1)[1] if len(fields) > 1 else ""))
    if not rows and not problems:
        problems.append(Problem(path.name, "file is empty"))
    return rows


def _check_sorted_unique(name: str, rows, problems: list[Problem]) -> None:
    seen: set[str] = set()
    previous = None
    for n, key, _ in rows:
        if key in seen:
            problems.append(Problem(name, f"duplicate id '{key}'", n))
        elif previous is not None and c_sort_key(key) < c_sort_key(previous):
            problems.append(Problem(name, f"not sorted (LC_ALL=C): '{key}' comes after '{previous}'", n))
        seen.add(key)
        previous = key


def validate_data_dir(path: str | Path) -> list[Problem]:
    """Every problem Kaldi's validate_data_dir.sh --no-feats --non-print would reject, and more.

    Unlike Kaldi's script it does not stop at the first problem and never passes a malformed
    utt2spk (Kaldi prints an error for a 3-field utt2spk yet exits 0).
    """
    path = Path(path)
    problems: list[Problem] = []
    if not path.is_dir():
        return [Problem(str(path), "not a directory")]
    for required in ("wav.scp", "text", "utt2spk", "spk2utt"):
        if not (path / required).is_file():
            problems.append(Problem(required, "file is missing"))
    if problems:
        return problems

    spec = {"wav.scp": (2, None), "text": (1, None), "utt2spk": (2, 2), "spk2utt": (2, None),
            "segments": (4, 4), "utt2dur": (2, 2)}
    spec.update({name: (1, None) for name in EXTRA_TABLES})
    tables = {}
    for name, (lo, hi) in spec.items():
        if (path / name).is_file():
            tables[name] = _parse(path / name, lo, hi, problems)
            _check_sorted_unique(name, tables[name], problems)

    utt2spk = {k: v for _, k, v in tables["utt2spk"]}
    for n, utt, spk in tables["utt2spk"]:
        if not utt.startswith(spk):
            problems.append(Problem("utt2spk", f"speaker id '{spk}' is not a prefix of utterance id '{utt}'", n))
    by_speaker = sorted(tables["utt2spk"], key=lambda r: (c_sort_key(r[2]), c_sort_key(r[1])))
    if [r[1] for r in by_speaker] != [r[1] for r in tables["utt2spk"]]:
        problems.append(Problem("utt2spk", "not in sorted order when sorted on speaker id: "
                                "make speaker ids prefixes that sort like the utterance ids"))

    expected: dict[str, list[str]] = {}
    for _, utt, spk in tables["utt2spk"]:
        expected.setdefault(spk, []).append(utt)
    spk2utt = {k: v.split() for _, k, v in tables["spk2utt"]}
    if spk2utt != expected:
        bad = sorted(set(spk2utt) ^ set(expected)) or [s for s in expected if spk2utt.get(s) != expected[s]]
        problems.append(Problem("spk2utt", f"is not the inverse of utt2spk (e.g. speaker '{bad[0]}')"))

    utts = set(utt2spk)
    for name in ["text", "segments", "utt2dur", *EXTRA_TABLES]:
        if name not in tables:
            continue
        keys = {k for _, k, _ in tables[name]}
        if keys != utts:
            missing, extra = sorted(utts - keys), sorted(keys - utts)
            msg = []
            if missing:
                msg.append(f"{len(missing)} utterances of utt2spk are missing (e.g. '{missing[0]}')")
            if extra:
                msg.append(f"{len(extra)} utterances are not in utt2spk (e.g. '{extra[0]}')")
            problems.append(Problem(name, "; ".join(msg)))

    recordings = {k for _, k, _ in tables["wav.scp"]}
    if "segments" in tables:
        for n, utt, rest in tables["segments"]:
            reco, start, end = rest.split()
            try:
                s, e = float(start), float(end)
            except ValueError:
                problems.append(Problem("segments", f"start/end are not numbers: '{start} {end}'", n))
                continue
            if s < 0 or e <= s:
                problems.append(Problem("segments", f"segment of '{utt}' has start {s} and end {e}", n))
            if reco not in recordings:
                problems.append(Problem("segments", f"recording '{reco}' is not in wav.scp", n))
    elif recordings != utts:
        missing = sorted(utts - recordings) + sorted(recordings - utts)
        problems.append(Problem("wav.scp", f"utterance ids differ from utt2spk (e.g. '{missing[0]}')"))

    for n, utt, words in tables["text"]:
        bad = ILLEGAL_WORDS.intersection(words.split())
        if bad:
            problems.append(Problem("text", f"illegal word(s) {sorted(bad)} in '{utt}'", n))
        if CONTROL_CHARS.search(words):
            problems.append(Problem("text", f"control characters in the text of '{utt}'", n))
        if any(c.isspace() and c not in " \t" for c in words):
            problems.append(Problem("text", f"white space other than space/tab in '{utt}'", n))
    for n, utt, dur in tables.get("utt2dur", []):
        try:
            ok = float(dur) > 0
        except ValueError:
            ok = False
        if not ok:
            problems.append(Problem("utt2dur", f"duration of '{utt}' must be a number > 0, got '{dur}'", n))
    return problems


def read_data_dir(path: str | Path) -> DataDir:
    """Load a data directory, refusing an invalid one with every problem listed."""
    path = Path(path)
    problems = validate_data_dir(path)
    if problems:
        raise DataDirError(f"invalid data directory {path} (run `narvox data fix {path}`):\n"
                           + "\n".join(f"  {p}" for p in problems))
    table = lambda name: {k: v for _, k, v in _parse(path / name, 1, None, [])}
    segments = None
    if (path / "segments").is_file():
        segments = {}
        for utt, rest in table("segments").items():
            reco, start, end = rest.split()
            segments[utt] = Segment(reco, float(start), float(end))
    utt2dur = {k: float(v) for k, v in table("utt2dur").items()} if (path / "utt2dur").is_file() else None
    return DataDir(wav_scp=table("wav.scp"), text=table("text"), utt2spk=table("utt2spk"),
                   segments=segments, utt2dur=utt2dur,
                   extra={n: table(n) for n in EXTRA_TABLES if (path / n).is_file()})


@dataclass
class FixReport:
    kept: int
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> utterance ids

    def __str__(self) -> str:
        lines = [f"kept {self.kept} utterances"]
        lines += [f"dropped {len(u)} utterances: {why} (e.g. {u[0]})" for why, u in self.dropped.items()]
        return "; ".join(lines)


def fix_data_dir(path: str | Path) -> FixReport:
    """Make a directory valid the way Kaldi's fix_data_dir.sh does, saying what it dropped and why.

    Sorts every table, regenerates spk2utt, and keeps only utterances present in every table with
    a single consistent entry. The originals are kept in `<dir>/.backup/`.
    """
    path = Path(path)
    backup = path / ".backup"
    backup.mkdir(exist_ok=True)
    tables: dict[str, dict[str, str]] = {}
    dropped: dict[str, list[str]] = {}
    for name in ("wav.scp", "text", "utt2spk", "segments", "utt2dur", *EXTRA_TABLES):
        f = path / name
        if not f.is_file():
            continue
        (backup / name).write_bytes(f.read_bytes())
        table: dict[str, str] = {}
        conflicting: set[str] = set()
        for line in f.read_text(encoding="utf-8", errors="replace").replace("\r", "").splitlines():
            fields = line.split(maxsplit=1)
            if not fields:
                continue
            key, value = fields[0], (fields[1].strip() if len(fields) > 1 else "")
            if key in table and table[key] != value:
                conflicting.add(key)
            table[key] = value
        for key in conflicting:
            del table[key]
        if conflicting:
            dropped.setdefault(f"conflicting duplicate lines in {name}", []).extend(sorted(conflicting))
        tables[name] = table
    for required in ("wav.scp", "text", "utt2spk"):
        if required not in tables:
            raise DataDirError(f"{path}: cannot fix a data directory without {required}")

    utt2spk = {}
    for utt, spk in tables["utt2spk"].items():
        if len(spk.split()) != 1:
            dropped.setdefault("utt2spk line does not have exactly 2 fields", []).append(utt)
        elif not utt.startswith(spk):
            dropped.setdefault("speaker id is not a prefix of the utterance id", []).append(utt)
        else:
            utt2spk[utt] = spk
    utts = set(utt2spk)
    segments = None
    if "segments" in tables:
        segments = {}
        for utt, rest in tables["segments"].items():
            try:
                reco, start, end = rest.split()
                seg = Segment(reco, float(start), float(end))
            except ValueError:
                dropped.setdefault("malformed segments line", []).append(utt)
                continue
            if seg.end > seg.start >= 0 and reco in tables["wav.scp"]:
                segments[utt] = seg
            else:
                dropped.setdefault("bad segment times or unknown recording", []).append(utt)
    audio_keys = set(segments) if segments is not None else set(tables["wav.scp"])
    for name, keys in [("wav.scp/segments", audio_keys), ("text", set(tables["text"])),
                       *[(n, set(tables[n])) for n in ("utt2dur", *EXTRA_TABLES) if n in tables]]:
        missing = utts - keys
        if missing:
            dropped.setdefault(f"missing from {name}", []).extend(sorted(missing))
            utts -= missing
    utt2dur = None
    if "utt2dur" in tables:
        utt2dur = {}
        for utt in list(utts):
            try:
                seconds = float(tables["utt2dur"][utt])
            except ValueError:
                seconds = 0.0
            if seconds > 0:
                utt2dur[utt] = seconds
            else:
                dropped.setdefault("utt2dur not a positive number", []).append(utt)
                utts.discard(utt)
    fixed = DataDir(wav_scp=tables["wav.scp"], text=tables["text"], utt2spk=utt2spk,
                    segments=segments, utt2dur=utt2dur,
                    extra={n: tables[n] for n in EXTRA_TABLES if n in tables})
    fixed = fixed.subset(utts)
    write_data_dir(fixed, path)
    report = FixReport(kept=len(fixed), dropped=dropped)
    log.info("fixed %s: %s", path, report)
    return report
