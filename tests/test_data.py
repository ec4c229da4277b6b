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
    assert any("1 utterances of utt2spk are missing (e.g. 'spka-000')" in p for p in problems_of(path))
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
    assert "speaker id 'spka' is not a prefix of utterance id 'spkb-000'" in found
    assert "spk2utt: is not the inverse of utt2spk" in found
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
    assert problems_of(path) == []
    assert (path / ".backup" / "text").is_file()


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
