"""LibriTTS data preparation on a tiny fake tree in the openslr 60 extracted layout."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from narvox.data import read_data_dir, validate_data_dir
from narvox.data.libritts import main, prepare_part
from narvox.errors import DataDirError

SR = 24000  # LibriTTS's rate
# speaker 19 is a prefix of speaker 196, as in train-clean-100: the ids must still sort as Kaldi wants
TREE = {"dev-clean": {"19": ["198"], "196": ["122150"], "84": ["121123", "121550"]},
        "test-clean": {"1089": ["134686"]}}


def sine(seconds: float, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def fake_libritts(root: Path) -> Path:
    for part, speakers in TREE.items():
        for spk, chapters in speakers.items():
            for chapter in chapters:
                d = root / "LibriTTS" / part / spk / chapter
                d.mkdir(parents=True)
                for i in range(2):
                    stem = f"{spk}_{chapter}_000003_{i:06d}"
                    sf.write(d / f"{stem}.wav", sine(0.2 + 0.1 * i), SR, subtype="PCM_16")
                    (d / f"{stem}.normalized.txt").write_text(f"Mr. Quilter paid $5, on page {i}!")
                    (d / f"{stem}.original.txt").write_text(f"MR. QUILTER paid $5, on page {i}!")
    return root


def test_prepare_part(tmp_path):
    root = fake_libritts(tmp_path / "corpus")
    data = prepare_part(root, "dev-clean", tmp_path / "data/dev_clean")
    assert validate_data_dir(tmp_path / "data/dev_clean") == []
    assert len(data) == 8 and data.speakers == ["19", "196", "84"]  # real speakers, not spk-chapter
    utt = "19-198_000003_000001"  # from 19_198_000003_000001.wav
    assert data.utt2spk[utt] == "19"
    assert data.text[utt] == "mister quilter paid five dollars on page one"
    assert data.extra["text_raw"][utt] == "Mr. Quilter paid $5, on page 1!"
    assert Path(data.wav_scp[utt]).name == "19_198_000003_000001.wav"
    on_disk = read_data_dir(tmp_path / "data/dev_clean")
    assert on_disk.text == data.text and on_disk.extra["text_raw"] == data.extra["text_raw"]
    assert on_disk.spk2utt["84"] == ["84-121123_000003_000000", "84-121123_000003_000001",
                                     "84-121550_000003_000000", "84-121550_000003_000001"]
    assert np.isclose(on_disk.load_audio(utt)[0].shape[0] / SR, 0.3)


def test_part_directly_under_root(tmp_path):
    root = fake_libritts(tmp_path / "corpus")
    data = prepare_part(root / "LibriTTS", "test-clean", tmp_path / "test_clean")
    assert data.speakers == ["1089"] and len(data) == 2


def test_inconsistent_tree_is_reported(tmp_path):
    root = fake_libritts(tmp_path / "corpus")
    chapter = root / "LibriTTS/dev-clean/84/121123"
    (chapter / "84_121123_000003_000000.normalized.txt").unlink()             # wav, no text
    (chapter / "84_121123_000003_000001.wav").unlink()                        # text, no wav
    (root / "LibriTTS/dev-clean/19/198/19_198_000003_000000.normalized.txt").write_text(" \n")
    sf.write(chapter / "84_999_000001_000000.wav", sine(0.1), SR)             # wrong chapter
    (chapter / "84_999_000001_000000.normalized.txt").write_text("Misplaced.")
    with pytest.raises(DataDirError) as err:
        prepare_part(root, "dev-clean", tmp_path / "out")
    msg = str(err.value)
    assert "84_121123_000003_000000.wav: no text file 84_121123_000003_000000.normalized.txt" in msg
    assert "84_121123_000003_000001.normalized.txt: no audio file 84_121123_000003_000001.wav" in msg
    assert "19_198_000003_000000.normalized.txt: empty text for 19_198_000003_000000.wav" in msg
    assert "84_999_000001_000000.wav: file name does not start with" in msg
    assert len(msg.splitlines()) == 5  # the heading and the four problems, nothing else
    assert not (tmp_path / "out").exists()
    with pytest.raises(DataDirError, match="no LibriTTS part 'train-clean-100'"):
        prepare_part(root, "train-clean-100", tmp_path / "out")


def test_empty_part_is_an_error(tmp_path):
    (tmp_path / "LibriTTS/dev-other/1/2").mkdir(parents=True)
    with pytest.raises(DataDirError, match="no <speaker>/<chapter>/\\*.wav files"):
        prepare_part(tmp_path, "dev-other", tmp_path / "out")


def test_cli(tmp_path):
    root = fake_libritts(tmp_path / "corpus")
    main(["--root", str(root), "--parts", "dev-clean", "test-clean", "--out", str(tmp_path / "data")])
    assert len(read_data_dir(tmp_path / "data/dev_clean")) == 8
    assert len(read_data_dir(tmp_path / "data/test_clean")) == 2


def test_tts_recipe_data_codes_and_phones_stages(tmp_path):
    """egs/libritts/tts/run.sh stages 0-2 on the fake tree: data dirs, codec tokens, phones."""
    import os
    import shutil
    import subprocess
    import sys
    from narvox.codecs.dump import CodesFile
    root_dir = Path(__file__).resolve().parents[1]
    corpus = fake_libritts(tmp_path / "corpus")
    egs = tmp_path / "egs"
    shutil.copytree(root_dir / "egs/utils", egs / "utils")
    for recipe in ("synth_en", "libritts"):
        shutil.copytree(root_dir / f"egs/{recipe}", egs / recipe, symlinks=True,
                        ignore=shutil.ignore_patterns("corpus", "data", "dump", "exp"))
    env = {**os.environ, "LIBRITTS": str(corpus), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "run.sh", "--stop-stage", "2", "--parts", "dev-clean test-clean"],
                         cwd=egs / "libritts/tts", env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "data/train_clean_100" in out.stderr  # the default train set is absent
    out = subprocess.run(["bash", "run.sh", "--stop-stage", "2", "--parts", "dev-clean test-clean",
                          "--train-set", "dev_clean", "--valid-set", "test_clean", "--test-sets", ""],
                         cwd=egs / "libritts/tts", env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    data = egs / "libritts/tts/data"
    for part in ("dev_clean", "test_clean"):
        utts = read_data_dir(data / part)
        assert len(CodesFile(data / part / "codes_narvox.bin")) == len(utts)
        assert set(utts.extra["text_phones"]) == set(utts.utt_ids)
    assert (data / "lang_phone/tokens.txt").is_file()
