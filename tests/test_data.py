import re
from pathlib import Path

import pytest

from narvox.data import (DataDir, Segment, combine, fix_data_dir, read_data_dir, validate_data_dir,
                         write_data_dir)
from narvox.data.dataset import UtteranceDataset
from narvox.data.sampler import DurationBatchSampler
from narvox.errors import AudioError, DataDirError


def problems_of(path) -> list[str]:
    return [str(p) for p in validate_data_dir(path)]


def test_round_trip(make_data_dir, tmp_path):
    data, path = make_data_dir()
    assert problems_of(path) == []
    loaded = read_data_dir(path)
    assert loaded.utt_ids == data.utt_ids and loaded.text == data.text
    assert loaded.spk2utt == {"spka": ["spka-000", "spka-001", "spka-002"],
                              "spkb": ["spkb-000", "spkb-001", "spkb-002"]}
    assert (path / "spk2utt").read_text().startswith("spka spka-000 spka-001 spka-002\n")


def test_unsorted_and_duplicate_are_both_reported(make_data_dir):
    _, path = make_data_dir()
    lines = (path / "text").read_text().splitlines()
    (path / "text").write_text("\n".join([lines[1], lines[0], *lines[2:], lines[2]]) + "\n")
    found = problems_of(path)
    assert any("text:2: not sorted" in p for p in found)
    assert any("text:7: duplicate id 'spka-002'" in p for p in found)


def test_missing_utterance(make_data_dir):
    _, path = make_data_dir()
    lines = (path / "text").read_text().splitlines()
    (path / "text").write_text("\n".join(lines[1:]) + "\n")
    assert problems_of(path) == ["utt2spk:1: 'spka-000' has no entry in text"]
    with pytest.raises(DataDirError, match="narvox data fix"):
        read_data_dir(path)


def test_three_field_utt2spk_is_an_error(make_data_dir):
    _, path = make_data_dir()
    text = (path / "utt2spk").read_text().replace("spka-000 spka", "spka-000 spka extra")
    (path / "utt2spk").write_text(text)
    assert any("utt2spk:1: expected 2 fields, found 3" in p for p in problems_of(path))


def test_other_file_problems(make_data_dir):
    _, path = make_data_dir()
    (path / "utt2spk").write_text((path / "utt2spk").read_text().replace("spkb-000 spkb", "spkb-000 spka"))
    (path / "wav.scp").write_text((path / "wav.scp").read_text().rstrip("\n"))
    (path / "text").write_text((path / "text").read_text().replace("hello world 1", "hello </s> 1"))
    (path / "utt2dur").write_text("".join(f"{u} 0\n" for u in read_utts(path)))
    found = "\n".join(problems_of(path))
    assert "utt2spk:4: speaker id 'spka' is not a prefix of utterance id 'spkb-000'" in found
    assert "spk2utt" not in found  # spkb-000 is at fault in utt2spk only: spk2utt is right without it
    assert "wav.scp: file does not end with a newline" in found
    assert "illegal word(s) ['</s>']" in found
    assert "utt2dur:1: duration of 'spka-000' must be a number > 0" in found


def read_utts(path: Path) -> list[str]:
    return [l.split()[0] for l in (path / "utt2spk").read_text().splitlines()]


def test_speaker_sort_order_is_checked(tmp_path):
    # 'ab' is a prefix of 'ab+c' and '+' sorts before '-': sorted by utterance != sorted by speaker
    data = DataDir(wav_scp={"ab+c-1": "x", "ab-1": "y"}, text={"ab+c-1": "a", "ab-1": "b"},
                   utt2spk={"ab+c-1": "ab+c", "ab-1": "ab"})
    with pytest.raises(DataDirError, match="sorted on speaker id"):
        write_data_dir(data, tmp_path / "d")


def test_fix_drops_and_reports(make_data_dir):
    _, path = make_data_dir()
    lines = (path / "text").read_text().splitlines()
    (path / "text").write_text("\n".join(reversed(lines[1:])) + "\n")  # unsorted, one missing
    report = fix_data_dir(path)
    assert report.kept == 5
    assert report.dropped == {"missing from text": ["spka-000"]}
    assert report.repaired == {"sorted (LC_ALL=C)": ["text"]}
    assert problems_of(path) == []
    assert (path / ".backup" / "text").is_file()


def five_faults(path: Path) -> None:
    """text: CRLF line endings and a second, different line for spka-002; utt2spk: a 3-field line;
    wav.scp: no spkb-001, and spkb-002 before spkb-000."""
    text = (path / "text").read_text().splitlines() + ["spka-002 something else"]
    (path / "text").write_bytes("".join(line + "\r\n" for line in text).encode())
    utt2spk = (path / "utt2spk").read_text()
    (path / "utt2spk").write_text(utt2spk.replace("spka-000 spka", "spka-000 spka extra"))
    wav = [line for line in (path / "wav.scp").read_text().splitlines() if not line.startswith("spkb-001")]
    wav[3], wav[4] = wav[4], wav[3]
    (path / "wav.scp").write_text("".join(line + "\n" for line in wav))


def test_validate_reports_each_fault_once_with_file_and_line(make_data_dir):
    _, path = make_data_dir()
    five_faults(path)
    assert problems_of(path) == [
        "text: Windows (CRLF) line endings on 7 lines; first at line 1",
        "utt2spk:1: expected 2 fields, found 3: 'spka-000 spka extra'",
        "text:7: duplicate id 'spka-002' with a different value than line 3",
        "wav.scp:5: not sorted (LC_ALL=C): 'spkb-000' comes after 'spkb-002'",
        "utt2spk:5: 'spkb-001' has no entry in wav.scp",
    ]


def test_fix_counts_each_dropped_utterance_once_and_says_what_it_normalised(make_data_dir):
    _, path = make_data_dir()
    five_faults(path)
    original = {name: (path / name).read_bytes() for name in ("text", "utt2spk", "wav.scp", "spk2utt")}
    report = fix_data_dir(path)
    assert report.kept == 3
    assert report.dropped == {"malformed line in utt2spk": ["spka-000"],
                              "conflicting duplicate lines in text": ["spka-002"],  # only here
                              "missing from wav.scp": ["spkb-001"]}
    assert report.repaired == {"converted Windows (CRLF) line endings to LF": ["text"],
                               "sorted (LC_ALL=C)": ["wav.scp"]}
    assert report.backup == path / ".backup"
    assert str(report) == (
        "kept 3 utterances; dropped 1 utterance: malformed line in utt2spk (spka-000); "
        "dropped 1 utterance: conflicting duplicate lines in text (spka-002); "
        "dropped 1 utterance: missing from wav.scp (spkb-001); "
        "text: converted Windows (CRLF) line endings to LF; wav.scp: sorted (LC_ALL=C); "
        f"the files before this fix are in {path / '.backup'}")
    assert problems_of(path) == []
    assert read_data_dir(path).utt_ids == ["spka-001", "spkb-000", "spkb-002"]
    assert {name: (path / ".backup" / name).read_bytes() for name in original} == original


def test_an_utterance_with_several_faults_is_dropped_under_the_first(make_data_dir):
    _, path = make_data_dir()
    for name in ("text", "wav.scp"):  # spka-000 is missing from both and has a 3-field utt2spk line
        (path / name).write_text("".join((path / name).read_text().splitlines(keepends=True)[1:]))
    (path / "utt2spk").write_text((path / "utt2spk").read_text().replace("spka-000 spka", "spka-000 spka x"))
    assert problems_of(path) == ["utt2spk:1: expected 2 fields, found 3: 'spka-000 spka x'"]
    assert fix_data_dir(path).dropped == {"malformed line in utt2spk": ["spka-000"]}


def test_fixing_again_keeps_the_original_backup(make_data_dir):
    _, path = make_data_dir()
    five_faults(path)
    original_text = (path / "text").read_bytes()
    fix_data_dir(path)
    lines = (path / "text").read_text().splitlines()
    (path / "text").write_text("\n".join(reversed(lines)) + "\n")
    second = fix_data_dir(path)
    assert second.backup == path / ".backup.1" and second.dropped == {}
    assert f"(the original ones in {path / '.backup'})" in str(second)
    assert (path / ".backup" / "text").read_bytes() == original_text
    assert (path / ".backup.1" / "text").read_text().splitlines() == list(reversed(lines))
    third = fix_data_dir(path)  # nothing left to fix: no new backup
    assert third.backup is None and str(third) == "kept 3 utterances; nothing to fix"
    assert sorted(p.name for p in path.glob(".backup*")) == [".backup", ".backup.1"]


@pytest.mark.parametrize("action", [validate_data_dir, fix_data_dir, read_data_dir])
def test_missing_empty_or_foreign_directory_is_a_data_dir_error(action, tmp_path):
    with pytest.raises(DataDirError, match=re.escape(f"{tmp_path / 'nope'}: no such directory")):
        action(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataDirError, match=re.escape(f"{tmp_path / 'empty'}: the directory is empty")):
        action(tmp_path / "empty")
    assert list((tmp_path / "empty").iterdir()) == []  # fix left no .backup behind
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("hi\n")
    with pytest.raises(DataDirError, match=re.escape(f"{tmp_path / 'other'}: not a Kaldi data directory")):
        action(tmp_path / "other")


def test_segments_faults_drop_the_utterances_they_are_about(tmp_path):
    files = {"wav.scp": "rec1 a.wav\nrec2\nrec3 c.wav\n",  # rec2 has no file: its segment s-3 goes
             "segments": "s-1 rec1 0 1\ns-2 rec1 1 0.5\ns-3 rec2 0 1\ns-4 rec9 0 1\ns-5 rec3 0 2\n",
             "text": "s-1 a\ns-2 b\ns-3 c\ns-4 d\ns-5 e\n",
             "utt2spk": "s-1 s\ns-2 s\ns-3 s\ns-4 s\ns-5 s\n",
             "spk2utt": "s s-1 s-2 s-3 s-4 s-5\n"}
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    assert problems_of(tmp_path) == ["wav.scp:2: expected at least 2 fields, found 1: 'rec2'",
                                     "segments:2: segment of 's-2' needs numbers 0 <= start < end, "
                                     "got start 1 and end 0.5",
                                     "segments:4: recording 'rec9' is not in wav.scp"]
    assert fix_data_dir(tmp_path).dropped == {"malformed line in wav.scp": ["s-3"],
                                              "bad segment times": ["s-2"],
                                              "recording not in wav.scp": ["s-4"]}
    assert problems_of(tmp_path) == []
    assert (tmp_path / "wav.scp").read_text() == "rec1 a.wav\nrec3 c.wav\n"
    assert (tmp_path / "spk2utt").read_text() == "s s-1 s-5\n"


def test_fix_refuses_what_it_cannot_repair_and_changes_nothing(make_data_dir):
    _, path = make_data_dir()
    (path / "wav.scp").unlink()
    (path / "text").write_text((path / "text").read_text().replace("spka-001 hello", "spka-001 hello </s>"))
    assert problems_of(path) == ["wav.scp: file is missing", "text:2: illegal word(s) ['</s>'] in 'spka-001'"]
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(DataDirError, match="(?s)cannot repair.*wav.scp: file is missing.*text:2: illegal"):
        fix_data_dir(path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_white_space_empty_lines_repeats_and_spk2utt_are_normalised(make_data_dir):
    _, path = make_data_dir()
    text = (path / "text").read_text().splitlines()
    (path / "text").write_text("\n".join([text[0] + "  ", "", *text[1:], text[1]]))  # no final newline
    (path / "spk2utt").unlink()
    assert problems_of(path) == ["text: file does not end with a newline",
                                 "text: 1 empty line; first at line 2",
                                 "text: extra white space around fields on 1 line; first at line 1",
                                 "text:8: duplicate id 'spka-001' repeats line 3",
                                 "spk2utt: file is missing"]
    report = fix_data_dir(path)
    assert report.kept == 6 and report.dropped == {}
    assert report.repaired == {"added the missing final newline": ["text"], "removed empty lines": ["text"],
                               "removed extra white space": ["text"],
                               "removed repeated identical lines": ["text"],
                               "rebuilt from utt2spk": ["spk2utt"]}
    assert (path / "text").read_text().splitlines() == text
    assert problems_of(path) == []


def test_cli_needs_to_catch_only_narvox_errors(tmp_path, caplog):
    from narvox.cli import main
    (tmp_path / "empty").mkdir()
    for action in ("validate", "fix", "info"):
        assert main(["data", action, str(tmp_path / "empty")]) == 1
    assert caplog.text.count(f"{tmp_path / 'empty'}: the directory is empty") == 3


def test_subset_combine_and_segments(make_data_dir, tmp_path):
    data, _ = make_data_dir()
    a, b = data.subset_speakers(["spka"]), data.subset_speakers(["spkb"])
    assert len(a) == 3 and a.speakers == ["spka"]
    assert combine([a, b]).text == data.text
    clash = DataDir(wav_scp={"spka-000": "other"}, text={"spka-000": "x"}, utt2spk={"spka-000": "spka"})
    with pytest.raises(DataDirError, match="different wav.scp"):
        combine([a, clash])
    with pytest.raises(DataDirError, match="not in the data"):
        data.subset(["nobody"])

    reco = data.wav_scp["spka-002"]
    seg = DataDir(wav_scp={"rec1": reco}, text={"spka-s1": "a", "spka-s2": "b"},
                  utt2spk={"spka-s1": "spka", "spka-s2": "spka"},
                  segments={"spka-s1": Segment("rec1", 0.0, 0.5), "spka-s2": Segment("rec1", 0.5, 1.0)})
    write_data_dir(seg, tmp_path / "seg")
    loaded = read_data_dir(tmp_path / "seg")
    assert loaded.durations() == {"spka-s1": 0.5, "spka-s2": 0.5}
    samples, _ = loaded.load_audio("spka-s2")
    assert len(samples) == 8000


def test_utt2dur_and_dataset(make_data_dir):
    data, path = make_data_dir()
    ds = UtteranceDataset(path)
    assert ds.durations == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.75, 1.0], abs=1e-3)
    item = ds[1]
    assert item["utt"] == "spka-001" and item["speaker"] == "spka" and len(item["audio"]) == 12000

    data.wav_scp["spka-001"] = "/nonexistent.flac"
    with pytest.raises(AudioError, match="utterance spka-001: /nonexistent.flac: no such file"):
        data.load_audio("spka-001")


def test_sampler_respects_budget_and_covers_everything():
    durations = [0.5 + (i % 17) * 0.3 for i in range(200)] + [30.0]
    sampler = DurationBatchSampler(durations, max_seconds=10.0, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(201))
    for b in batches:
        assert len(b) == 1 or max(durations[i] for i in b) * len(b) <= 10.0
    sampler.set_epoch(1)
    assert list(sampler) != batches


def test_sampler_shards_across_ranks():
    durations = [1.0 + (i % 7) * 0.5 for i in range(101)]
    shards = [list(DurationBatchSampler(durations, 6.0, seed=0, rank=r, world_size=3)) for r in range(3)]
    assert len({len(s) for s in shards}) == 1  # same number of steps on every rank
    seen = [i for s in shards for b in s for i in b]
    assert set(seen) == set(range(101))
    flat = [tuple(b) for s in shards for b in s]
    total = len(DurationBatchSampler(durations, 6.0, seed=0).all_batches())
    assert len(flat) - total < 3  # only the padding repeats


def test_speed_perturb(make_data_dir, tmp_path):
    from narvox.data.kaldi import speed_perturb
    data, _ = make_data_dir()
    fast = speed_perturb(data, 1.1)
    both = combine([data, fast])
    write_data_dir(both, tmp_path / "sp")
    assert validate_data_dir(tmp_path / "sp") == []
    samples, _ = fast.load_audio("sp1.1-spka-002")
    assert abs(len(samples) - 16000 / 1.1) < 50
    assert fast.utt2spk["sp1.1-spka-002"] == "sp1.1-spka"
