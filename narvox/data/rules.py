"""The rules of a Kaldi data directory: one list, which `validate_data_dir` reports and
`fix_data_dir` repairs.

Rules run in order on the files as read, and each rule's repair is applied before the next rule
looks, when validating as when fixing. So each fault is reported once (CRLF line endings are not
also extra white space; an utterance dropped for a bad utt2spk line is not also missing from
spk2utt), and fix counts each dropped utterance once, under the first rule that drops it. Later
rules rely on the repairs of earlier ones (a line has as many fields as its file needs once the
malformed lines are gone). Problems keep the line numbers of the files as read, whatever was sorted
or dropped before them.
"""
from __future__ import annotations

import itertools
import logging
import re
import shutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from narvox.errors import DataDirError

log = logging.getLogger(__name__)

REQUIRED = ("wav.scp", "text", "utt2spk")
EXTRA_TABLES = ("text_raw", "text_phones", "utt2gender", "utt2lang")  # other "<utt> <value>" files, carried along
# (least, most) fields on a line of each file keyed by utterance (wav.scp is keyed by recording when
# there are segments). spk2utt is not here: it is checked whole against utt2spk and rebuilt from it.
FIELDS: dict[str, tuple[int, int | None]] = {
    "wav.scp": (2, None), "text": (1, None), "utt2spk": (2, 2), "segments": (4, 4), "utt2dur": (2, 2),
    **{name: (1, None) for name in EXTRA_TABLES}}
FILES = (*FIELDS, "spk2utt")
ILLEGAL_WORDS = {"<s>", "</s>", "#0"}
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
OTHER_SPACE = re.compile(r"[^\S \t]")  # white space other than space and tab
DOUBLE_SPACE = re.compile(r"[ \t]{2}")
SPACES = re.compile(r"[ \t]{2,}")


def c_sort_key(s: str) -> bytes:
    """Order of `LC_ALL=C sort`: raw bytes."""
    return s.encode("utf-8")


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data directory, located to a file and line where possible."""
    file: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Line:
    """A non-empty line of a file: its number in the file as read, its text without line ending."""
    number: int
    text: str
    # the first field, which most rules read: found once, here. The other fields are split anew
    # when asked for, as keeping them for files of 100,000s of lines would take seconds more.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", self.text.split(maxsplit=1)[0])

    @property
    def fields(self) -> list[str]:
        return self.text.split()

    @property
    def value(self) -> str:
        """What follows the key, as Kaldi reads a table."""
        return self.text.strip()[len(self.key):].strip()


@dataclass(frozen=True)
class Table:
    """A file as read: its non-empty lines, and the faults of form its lines no longer show."""
    name: str
    lines: tuple[Line, ...]
    crlf: tuple[int, ...] = ()  # numbers of the lines that ended in CR LF
    empty: tuple[int, ...] = ()  # numbers of the empty lines
    final_newline: bool = True
    read_empty: bool = False  # empty on disk (one fault), not emptied by dropping utterances

    @property
    def keys(self) -> set[str]:
        return {line.key for line in self.lines}


Tables = dict[str, Table]  # by file name: the files that exist
Repair = Callable[[Tables, list[Problem]], Tables]


@dataclass(frozen=True)
class Rule:
    """One requirement. `check` yields where the tables break it; `repair`, where fix can mend that,
    returns the tables mended: by dropping the utterances at fault (`_drop`) or by changing the
    files' form. `reason` says in fix's report why utterances were dropped, or what was changed.
    A rule without a repair needs a person."""
    check: Callable[[Tables], Iterator[Problem]]
    repair: Repair | None = None
    reason: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one rule found, and the utterances its repair dropped."""
    rule: Rule
    problems: list[Problem]
    dropped: list[str]


# ---- reading -------------------------------------------------------------------------------------
def _read_table(path: Path) -> Table:
    text = path.read_bytes().decode("utf-8", errors="replace")
    rows = text.split("\n")
    if rows[-1] == "":
        rows.pop()  # the last newline ends the last line; it does not start another
    lines, crlf, empty = [], [], []
    for number, row in enumerate(rows, 1):
        if row.endswith("\r"):
            crlf.append(number)
            row = row[:-1]
        if row.strip():
            lines.append(Line(number, row))
        else:
            empty.append(number)
    return Table(path.name, tuple(lines), tuple(crlf), tuple(empty),
                 final_newline=text.endswith("\n") or not text, read_empty=not lines)


def load_tables(path: Path) -> Tables:
    """The data files in `path`. Raises DataDirError if it is not a directory or has none of them."""
    if not path.is_dir():
        raise DataDirError(f"{path}: {'not a directory' if path.exists() else 'no such directory'}")
    try:
        names = [name for name in FILES if (path / name).is_file()]
        if not names and not any(path.iterdir()):
            raise DataDirError(f"{path}: the directory is empty")
        if not names:
            raise DataDirError(f"{path}: not a Kaldi data directory (no wav.scp, text, utt2spk or spk2utt)")
        return {name: _read_table(path / name) for name in names}
    except OSError as e:
        raise DataDirError(f"{e.filename}: cannot read ({e.strerror})") from None


def _lines(tables: Tables, name: str) -> tuple[Line, ...]:
    return tables[name].lines if name in tables else ()


def _by_utterance(tables: Tables) -> list[str]:
    """The files keyed by utterance id: all in FIELDS but wav.scp when segments key it by recording."""
    return [name for name in FIELDS if name in tables and not (name == "wav.scp" and "segments" in tables)]


def _utterances(tables: Tables) -> set[str]:
    """Every utterance id in any file, consistent or not."""
    return set().union(*(tables[name].keys for name in _by_utterance(tables)))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


# ---- repairs -------------------------------------------------------------------------------------
def _setting(**changes: object) -> Repair:
    """A repair that sets `changes` on each file with a problem."""
    def repair(tables: Tables, problems: list[Problem]) -> Tables:
        return {**tables, **{p.file: replace(tables[p.file], **changes) for p in problems}}
    return repair


def _relining(how: Callable[[tuple[Line, ...]], Iterable[Line]]) -> Repair:
    """A repair that replaces the lines of each file with a problem by `how(lines)`."""
    def repair(tables: Tables, problems: list[Problem]) -> Tables:
        return {**tables, **{p.file: replace(tables[p.file], lines=tuple(how(tables[p.file].lines)))
                             for p in problems}}
    return repair


def _tidy(lines: tuple[Line, ...]) -> Iterator[Line]:
    for line in lines:
        yield Line(line.number, SPACES.sub(" ", line.text.strip(" \t")))


def _first_of_each_key(lines: tuple[Line, ...]) -> Iterator[Line]:
    seen: set[str] = set()
    for line in lines:
        if line.key not in seen:
            seen.add(line.key)
            yield line


def _sorted(lines: tuple[Line, ...]) -> list[Line]:
    return sorted(lines, key=lambda line: c_sort_key(line.key))


def _utterances_of(tables: Tables, name: str, key: str) -> set[str]:
    """The utterances the line keyed `key` in file `name` is about."""
    if name in _by_utterance(tables):
        return {key}
    return {line.key for line in _lines(tables, "segments") if line.fields[1:2] == [key]}  # a recording's


def _drop(tables: Tables, problems: list[Problem]) -> Tables:
    """Remove the lines at fault, and every line of the utterances they are about from every file."""
    at_fault = {(p.file, p.line) for p in problems}
    utts: set[str] = set()
    for name in {p.file for p in problems}:
        for line in tables[name].lines:
            if (name, line.number) in at_fault:
                utts |= _utterances_of(tables, name, line.key)
    keyed = _by_utterance(tables)
    kept: Tables = {}
    for name, table in tables.items():
        lines = [line for line in table.lines
                 if (name, line.number) not in at_fault and not (name in keyed and line.key in utts)]
        if name == "spk2utt":
            lines = [short for line in lines if (short := _spk2utt_line_without(line, utts))]
        kept[name] = replace(table, lines=tuple(lines))
    return kept


def _spk2utt_line_without(line: Line, utts: set[str]) -> Line | None:
    """A spk2utt line without `utts`; None if none of its utterances is left."""
    speaker, *own = line.fields
    left = [u for u in own if u not in utts]
    if len(left) == len(own):
        return line
    return Line(line.number, " ".join([speaker, *left])) if left else None


def _spk2utt_of(utt2spk: Table) -> list[str]:
    """spk2utt's lines as Kaldi's utt2spk_to_spk2utt.pl writes them."""
    by_speaker: dict[str, list[str]] = {}
    for line in _sorted(utt2spk.lines):
        by_speaker.setdefault(line.fields[1], []).append(line.key)
    return [" ".join([spk, *by_speaker[spk]]) for spk in sorted(by_speaker, key=c_sort_key)]


def _rebuild_spk2utt(tables: Tables, problems: list[Problem]) -> Tables:
    lines = (Line(n, text) for n, text in enumerate(_spk2utt_of(tables["utt2spk"]), 1))
    return {**tables, "spk2utt": Table("spk2utt", tuple(lines))}


# ---- checks --------------------------------------------------------------------------------------
def _check_required(tables: Tables) -> Iterator[Problem]:
    for name in REQUIRED:
        if name not in tables:
            yield Problem(name, "file is missing")


def _check_line_endings(tables: Tables) -> Iterator[Problem]:
    for t in tables.values():
        if t.crlf:
            yield Problem(t.name, f"Windows (CRLF) line endings on {_count(len(t.crlf), 'line')}; "
                                  f"first at line {t.crlf[0]}")


def _check_final_newline(tables: Tables) -> Iterator[Problem]:
    for t in tables.values():
        if not t.final_newline:
            yield Problem(t.name, "file does not end with a newline")


def _check_empty_lines(tables: Tables) -> Iterator[Problem]:
    for t in tables.values():
        if t.empty and t.lines:  # a file with no other lines is reported as empty
            yield Problem(t.name, f"{_count(len(t.empty), 'empty line')}; first at line {t.empty[0]}")


def _untidy(text: str) -> bool:
    """Whether the fields are not separated by one space or tab, as Kaldi wants."""
    return text[0] in " \t" or text[-1] in " \t" or DOUBLE_SPACE.search(text) is not None


def _check_white_space(tables: Tables) -> Iterator[Problem]:
    for t in tables.values():
        untidy = [line.number for line in t.lines if _untidy(line.text)]
        if untidy:
            yield Problem(t.name, f"extra white space around fields on {_count(len(untidy), 'line')}; "
                                  f"first at line {untidy[0]}")


def _check_empty_files(tables: Tables) -> Iterator[Problem]:
    for name in FIELDS:
        if name in tables and not tables[name].lines:
            yield Problem(name, "file is empty")


def _check_fields(name: str, tables: Tables) -> Iterator[Problem]:
    least, most = FIELDS[name]
    want = str(least) if least == most else f"at least {least}"
    for line in _lines(tables, name):
        found = len(line.fields)
        if found < least or (most is not None and found > most):
            yield Problem(name, f"expected {want} fields, found {found}: '{line.text}'", line.number)


def _check_conflicts(name: str, tables: Tables) -> Iterator[Problem]:
    first: dict[str, Line] = {}
    reported: set[str] = set()
    for line in _lines(tables, name):
        earlier = first.setdefault(line.key, line)
        if earlier is not line and line.key not in reported and earlier.value != line.value:
            reported.add(line.key)
            yield Problem(name, f"duplicate id '{line.key}' with a different value than line "
                                f"{earlier.number}", line.number)


def _check_repeats(tables: Tables) -> Iterator[Problem]:
    """Repeated identical lines (those that differ were dropped by _check_conflicts' rule)."""
    for name in FIELDS:
        first: dict[str, int] = {}
        reported: set[str] = set()
        for line in _lines(tables, name):
            earlier = first.setdefault(line.key, line.number)
            if earlier != line.number and line.key not in reported:
                reported.add(line.key)
                yield Problem(name, f"duplicate id '{line.key}' repeats line {earlier}", line.number)


def _check_sorted(tables: Tables) -> Iterator[Problem]:
    for name in FIELDS:
        lines = _lines(tables, name)
        keys = [c_sort_key(line.key) for line in lines]
        first = next((i for i in range(1, len(keys)) if keys[i] < keys[i - 1]), None)
        if first is not None:
            yield Problem(name, f"not sorted (LC_ALL=C): '{lines[first].key}' comes after "
                                f"'{lines[first - 1].key}'", lines[first].number)


def _check_speaker_prefix(tables: Tables) -> Iterator[Problem]:
    for line in _lines(tables, "utt2spk"):
        utt, spk = line.fields
        if not utt.startswith(spk):
            yield Problem("utt2spk", f"speaker id '{spk}' is not a prefix of utterance id '{utt}'",
                          line.number)


def _check_not_in_utt2spk(tables: Tables) -> Iterator[Problem]:
    if "utt2spk" not in tables or tables["utt2spk"].read_empty:
        return  # a missing or empty utt2spk is the one fault
    utts = tables["utt2spk"].keys
    reported: set[str] = set()
    for name in _by_utterance(tables):
        for line in tables[name].lines:
            if line.key not in utts and line.key not in reported:
                reported.add(line.key)
                yield Problem(name, f"'{line.key}' is not in utt2spk", line.number)


def _check_missing_from(name: str, tables: Tables) -> Iterator[Problem]:
    if name not in _by_utterance(tables) or tables[name].read_empty:
        return  # a missing or empty file is the one fault
    keys = tables[name].keys
    for line in _lines(tables, "utt2spk"):
        if line.key not in keys:
            yield Problem("utt2spk", f"'{line.key}' has no entry in {name}", line.number)


def _check_segment_times(tables: Tables) -> Iterator[Problem]:
    for line in _lines(tables, "segments"):
        _, _, start, end = line.fields
        try:
            ok = 0 <= float(start) < float(end)
        except ValueError:
            ok = False
        if not ok:
            yield Problem("segments", f"segment of '{line.key}' needs numbers 0 <= start < end, "
                                      f"got start {start} and end {end}", line.number)


def _check_recordings(tables: Tables) -> Iterator[Problem]:
    if not _lines(tables, "wav.scp"):
        return  # a missing or empty wav.scp is the one fault
    recordings = tables["wav.scp"].keys
    for line in _lines(tables, "segments"):
        if line.fields[1] not in recordings:
            yield Problem("segments", f"recording '{line.fields[1]}' is not in wav.scp", line.number)


def _check_durations(tables: Tables) -> Iterator[Problem]:
    for line in _lines(tables, "utt2dur"):
        try:
            ok = float(line.value) > 0
        except ValueError:
            ok = False
        if not ok:
            yield Problem("utt2dur", f"duration of '{line.key}' must be a number > 0, got '{line.value}'",
                          line.number)


def _check_spk2utt(tables: Tables) -> Iterator[Problem]:
    if not _lines(tables, "utt2spk"):
        return  # a missing or empty utt2spk is the one fault
    if "spk2utt" not in tables:
        yield Problem("spk2utt", "file is missing")
        return
    found = tables["spk2utt"].lines
    expected = _spk2utt_of(tables["utt2spk"])
    lines = (" ".join(line.fields) for line in found)
    for i, (want, got) in enumerate(itertools.zip_longest(expected, lines)):
        if want != got:
            yield Problem("spk2utt", f"is not the inverse of utt2spk: expected {_quoted(want)}, "
                                     f"found {_quoted(got)}", found[i].number if i < len(found) else None)
            return


def _quoted(line: str | None) -> str:
    return "the end of the file" if line is None else f"'{line}'"


def _check_speaker_order(tables: Tables) -> Iterator[Problem]:
    lines = _lines(tables, "utt2spk")
    by_speaker = sorted(lines, key=lambda line: (c_sort_key(line.fields[1]), c_sort_key(line.key)))
    for line, other in zip(lines, by_speaker):
        if line is not other:
            yield Problem("utt2spk", "not in sorted order when sorted on speaker id: make speaker ids "
                                     "prefixes that sort like the utterance ids", line.number)
            return


def _check_text(tables: Tables) -> Iterator[Problem]:
    for line in _lines(tables, "text"):
        illegal = ILLEGAL_WORDS.intersection(line.fields[1:])
        if illegal:
            yield Problem("text", f"illegal word(s) {sorted(illegal)} in '{line.key}'", line.number)
        if CONTROL_CHARS.search(line.value):
            yield Problem("text", f"control characters in the text of '{line.key}'", line.number)
        elif OTHER_SPACE.search(line.value):
            yield Problem("text", f"white space other than space/tab in '{line.key}'", line.number)


# In order: a fault found by one rule is repaired before the next looks, so it is reported once, and
# an utterance is dropped under the first reason that applies. The form of the files comes first,
# then faults of single lines, then whether the files agree: an utterance dropped for a fault of its
# own is not also reported as missing elsewhere. Text only a person can correct is checked before
# anything is dropped, so that validate shows all of it at once.
RULES: list[Rule] = [
    Rule(_check_required),
    Rule(_check_line_endings, _setting(crlf=()), "converted Windows (CRLF) line endings to LF"),
    Rule(_check_final_newline, _setting(final_newline=True), "added the missing final newline"),
    Rule(_check_empty_lines, _setting(empty=()), "removed empty lines"),
    Rule(_check_white_space, _relining(_tidy), "removed extra white space"),
    Rule(_check_empty_files),
    Rule(_check_text),
    *(Rule(partial(_check_fields, name), _drop, f"malformed line in {name}") for name in FIELDS),
    *(Rule(partial(_check_conflicts, name), _drop, f"conflicting duplicate lines in {name}")
      for name in FIELDS),
    Rule(_check_repeats, _relining(_first_of_each_key), "removed repeated identical lines"),
    Rule(_check_sorted, _relining(_sorted), "sorted (LC_ALL=C)"),
    Rule(_check_speaker_prefix, _drop, "speaker id is not a prefix of the utterance id"),
    Rule(_check_segment_times, _drop, "bad segment times"),
    Rule(_check_durations, _drop, "duration is not a positive number"),
    Rule(_check_not_in_utt2spk, _drop, "not in utt2spk"),
    *(Rule(partial(_check_missing_from, name), _drop, f"missing from {name}") for name in FIELDS
      if name != "utt2spk"),
    Rule(_check_recordings, _drop, "recording not in wav.scp"),
    Rule(_check_spk2utt, _rebuild_spk2utt, "rebuilt from utt2spk"),
    Rule(_check_speaker_order),
]


def apply_rules(tables: Tables) -> tuple[Tables, list[Outcome]]:
    """Check the rules in order, applying each one's repair before the next one looks."""
    outcomes = []
    for rule in RULES:
        problems = list(rule.check(tables))
        if problems:
            before = _utterances(tables)
            if rule.repair is not None:
                tables = rule.repair(tables, problems)
            outcomes.append(Outcome(rule, problems, sorted(before - _utterances(tables), key=c_sort_key)))
    return tables, outcomes


def problems_in(tables: Tables) -> list[Problem]:
    """What every rule finds, in order."""
    return [p for outcome in apply_rules(tables)[1] for p in outcome.problems]


def validate_data_dir(path: str | Path) -> list[Problem]:
    """Every fault Kaldi's validate_data_dir.sh --no-feats --non-print would reject, and more, each
    reported once with its file and line.

    Unlike Kaldi's script it does not stop at the first problem and never passes a malformed
    utt2spk (Kaldi prints an error for a 3-field utt2spk yet exits 0). Raises DataDirError if
    `path` is not a directory or holds none of a data directory's files.
    """
    return problems_in(load_tables(Path(path)))


# ---- fixing --------------------------------------------------------------------------------------
@dataclass
class FixReport:
    """What fix_data_dir changed."""
    kept: int  # utterances left
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason -> utterances, each under one reason
    repaired: dict[str, list[str]] = field(default_factory=dict)  # what was changed in place -> files
    backup: Path | None = None  # the files as they were before this fix; None if nothing needed fixing

    def __str__(self) -> str:
        parts = [f"kept {_count(self.kept, 'utterance')}"]
        for reason, utts in self.dropped.items():
            examples = ", ".join(utts[:3]) + (", ..." if len(utts) > 3 else "")
            parts.append(f"dropped {_count(len(utts), 'utterance')}: {reason} ({examples})")
        parts += [f"{', '.join(files)}: {what}" for what, files in self.repaired.items()]
        if self.backup is not None:
            original = self.backup.with_name(".backup")
            parts.append(f"the files before this fix are in {self.backup}"
                         + (f" (the original ones in {original})" if self.backup != original else ""))
        elif not self.dropped and not self.repaired:
            parts.append("nothing to fix")
        return "; ".join(parts)


def fix_data_dir(path: str | Path) -> FixReport:
    """Make a directory valid, as Kaldi's fix_data_dir.sh does, saying what it dropped and why.

    Applies the repair of every rule validate_data_dir checks: normalises line endings and white
    space, sorts, rebuilds spk2utt, and drops the utterances that are malformed or not in every
    file. Before it changes anything it copies the data files to `<dir>/.backup/`, or, when that
    exists, to `.backup.1`, `.backup.2`, ...: the original data is never overwritten. Raises
    DataDirError, changing nothing, if `path` is not a data directory or has faults only a person
    can mend.
    """
    path = Path(path)
    original = load_tables(path)
    tables, outcomes = apply_rules(original)
    by_hand = [p for outcome in outcomes if outcome.rule.repair is None for p in outcome.problems]
    if by_hand:
        raise DataDirError(f"{path}: fix cannot repair these; correct them by hand, then fix again:\n"
                           + "\n".join(f"  {p}" for p in by_hand))
    report = FixReport(kept=len(tables["utt2spk"].lines))
    for outcome in outcomes:
        if outcome.dropped:
            report.dropped[outcome.rule.reason] = outcome.dropped
        else:
            files = {p.file for p in outcome.problems}
            report.repaired[outcome.rule.reason] = sorted(files, key=FILES.index)
    if not outcomes:
        return report
    if not report.kept:
        raise DataDirError(f"{path}: fix would drop every utterance ({report})")
    try:
        report.backup = _back_up(path, list(original))
        for name, table in tables.items():
            if table != original.get(name):
                text = "".join(line.text + "\n" for line in table.lines)
                (path / name).write_text(text, encoding="utf-8")
    except OSError as e:
        raise DataDirError(f"{path}: cannot write the fixed files ({e})") from None
    log.info("fixed %s: %s", path, report)
    return report


def _back_up(path: Path, names: list[str]) -> Path:
    """Copy the files `names` into the first of `.backup`, `.backup.1`, ... that does not exist yet."""
    n = 0
    while True:
        backup = path / (".backup" if n == 0 else f".backup.{n}")
        try:
            backup.mkdir()  # fails if it exists: an earlier backup, the original data first, stays as it is
            break
        except FileExistsError:
            n += 1
    for name in names:
        shutil.copy2(path / name, backup / name)
    return backup
