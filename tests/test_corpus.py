import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from narvox.data import read_data_dir, validate_data_dir
from narvox.data.synth_en import (SPLITS, TRAIN_VOICES, UNSEEN_VOICES, VOICE_SETS, Job, Voice,
                                  fortune_sentences, generate, plan, synthesize)
from narvox.errors import AudioError

ROOT = Path(__file__).resolve().parents[1]
needs_engines = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("espeak-ng", "flite", "text2wave", "sox")),
    reason="Debian speech engines are missing (make test installs them)")


def test_voice_inventory():
    speakers = [v.speaker for v in TRAIN_VOICES + UNSEEN_VOICES]
    assert len(set(speakers)) == len(speakers) and len(TRAIN_VOICES) >= 20
    assert not {v.speaker for v in TRAIN_VOICES} & {v.speaker for v in UNSEEN_VOICES}
    assert {v.engine for v in TRAIN_VOICES} == {"espeak", "flite"}
    assert all(not a.startswith(b) for a in speakers for b in speakers if a != b)


def test_all_voices_set_holds_every_variant_and_unseen_ones_stay_unseen():
    train, unseen = VOICE_SETS["all"]
    speakers = [v.speaker for v in train + unseen]
    assert len(set(speakers)) == len(speakers) and len(train) > 700
    assert not {v.speaker for v in train} & {v.speaker for v in unseen}
    assert {v.name for v in train} >= {"en-us+klatt4", "en-gb-x-rp+whisper", "kal16"}
    assert all(v.name.startswith("en-gb-x-gbcwmd+") or v.engine == "festival" for v in unseen)
    assert len({(v.rate, v.pitch, v.range) for v in train}) > 300  # spread, not one setting
    # utterance ids sort like their speakers (Kaldi's utt2spk rule), prefixes and all
    utts = [(f"{s}-train00001", s) for s in speakers]
    assert [s for _, s in sorted(utts)] == sorted(speakers)


def test_pitch_range_is_spoken_through_ssml(tmp_path):
    voice = Voice("espeak", "en-us+klatt2", rate=150, pitch=40, range="x-high")
    assert voice.script("Q & A") == '<speak><prosody range="x-high">Q &amp; A</prosody></speak>\n'
    assert "-m" in voice.command(tmp_path / "t", tmp_path / "w") and Voice("flite", "slt").script("a") == "a\n"


def test_sentences_are_filtered_and_unique():
    sentences = fortune_sentences()
    assert len(sentences) > 10000
    assert all(4 <= len(s.split()) <= 20 for s in sentences)
    assert not [s for s in sentences if s.endswith(("Mr.", "Dr.", "St."))]


def test_plan_is_deterministic_and_splits_are_disjoint():
    a, b = plan(0.5, seed=1), plan(0.5, seed=1)
    assert a == b and plan(0.5, seed=2) != a
    sentences = {name: {s for _, s in pairs} for name, pairs in a.items()}
    for x in SPLITS:
        for y in SPLITS:
            assert x == y or not sentences[x] & sentences[y]
    assert {v for v, _ in a["test_unseen_voice"]} <= set(UNSEEN_VOICES)
    wide = plan(0.5, seed=1, voices="all")
    assert {v for v, _ in wide["test_unseen_voice"]} <= set(VOICE_SETS["all"][1])
    assert len({v for v, _ in wide["train"]}) > 100


@needs_engines
def test_generator_tiny(tmp_path):
    generate(tmp_path, hours=0.01, nj=2)
    for split in SPLITS:
        assert validate_data_dir(tmp_path / split) == []
        data = read_data_dir(tmp_path / split)
        assert len(data) >= 4 and set(data.extra) == {"text_raw"}
        for utt in data.utt_ids:
            samples, sr = data.load_audio(utt)
            assert sr == 16000 and 0.3 < len(samples) / sr < 20
            assert 0.8 < abs(samples).max() <= 0.95  # gain-normalised to -1 dBFS
    unseen = read_data_dir(tmp_path / "test_unseen_voice")
    assert {s.split("-")[0] for s in unseen.speakers} >= {"festival"}


@needs_engines
def test_generator_all_voices(tmp_path):
    generate(tmp_path, hours=0.005, nj=2, voices="all")
    train = read_data_dir(tmp_path / "train")
    assert validate_data_dir(tmp_path / "train") == [] and len(train.speakers) == len(train)


@needs_engines
def test_failing_engine_names_the_utterance(tmp_path):
    job = Job("bad-00001", Voice("espeak", "zzz", 150, 50), "Hello there friend.", "hello there friend",
              tmp_path / "x.flac")
    with pytest.raises(AudioError, match="utterance bad-00001"):
        synthesize(job)


@needs_engines
def test_data_sh_and_cli(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "egs/synth_en/local/data.sh"), "--size", "0.005",
                          str(tmp_path / "c")], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "test_unseen_voice" in out.stdout
    cli = subprocess.run([sys.executable, "-m", "narvox", "data", "validate", str(tmp_path / "c/train")],
                         capture_output=True, text=True)
    assert cli.returncode == 0 and "OK" in cli.stdout
    (tmp_path / "c/train/text").write_text("zzz hello\n")
    cli = subprocess.run([sys.executable, "-m", "narvox", "data", "validate", str(tmp_path / "c/train")],
                         capture_output=True, text=True)
    assert cli.returncode == 1 and "text:1: 'zzz' is not in utt2spk" in cli.stdout
    assert "has no entry in text" in cli.stdout  # every utterance that lost its transcript


def test_version():
    out = subprocess.run([sys.executable, "-m", "narvox", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("narvox ")
