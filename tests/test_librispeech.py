"""LibriSpeech data preparation on a tiny fake tree in the standard extracted layout."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from narvox.audio import write_audio
from narvox.data import read_data_dir, validate_data_dir
from narvox.data.librispeech import prepare_part
from narvox.errors import DataDirError
from tests.conftest import tone

ROOT = Path(__file__).resolve().parents[1]


def fake_librispeech(root: Path) -> Path:
    for part, speakers in (("dev-clean", {"1272": ["128104"], "174": ["50561", "84280"]}),
                           ("test-clean", {"1089": ["134686"]})):
        for spk, chapters in speakers.items():
            for chapter in chapters:
                d = root / "LibriSpeech" / part / spk / chapter
                d.mkdir(parents=True)
                lines = []
                for i in range(3):
                    utt = f"{spk}-{chapter}-{i:04d}"
                    write_audio(d / f"{utt}.flac", tone(0.4 + 0.1 * i), 16000)
                    lines.append(f"{utt} MISTER QUILTER IS THE APOSTLE OF THE MIDDLE CLASSES {i}")
                (d / f"{spk}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
    return root


def test_prepare_part(tmp_path):
    root = fake_librispeech(tmp_path / "corpus")
    data = prepare_part(root, "dev-clean", tmp_path / "data/dev_clean")
    assert validate_data_dir(tmp_path / "data/dev_clean") == []
    assert len(data) == 9 and data.speakers == ["1272-128104", "174-50561", "174-84280"]
    assert data.text["1272-128104-0001"] == "mister quilter is the apostle of the middle classes one"
    assert data.extra["text_raw"]["1272-128104-0001"].startswith("MISTER QUILTER")


def test_inconsistent_tree_is_reported(tmp_path):
    root = fake_librispeech(tmp_path / "corpus")
    chapter = root / "LibriSpeech/dev-clean/1272/128104"
    (chapter / "1272-128104-0001.flac").unlink()
    write_audio(chapter / "1272-128104-0009.flac", tone(0.3), 16000)
    with pytest.raises(DataDirError) as err:
        prepare_part(root, "dev-clean", tmp_path / "out")
    assert "1272-128104-0001 has no audio file" in str(err.value)
    assert "1272-128104-0009.flac: no line in 1272-128104.trans.txt" in str(err.value)
    with pytest.raises(DataDirError, match="no LibriSpeech part 'train-clean-100'"):
        prepare_part(root, "train-clean-100", tmp_path / "out")


def test_run_sh_data_stage(tmp_path):
    root = fake_librispeech(tmp_path / "corpus")
    egs = tmp_path / "egs"
    shutil.copytree(ROOT / "egs/utils", egs / "utils")
    shutil.copytree(ROOT / "egs/synth_en", egs / "synth_en", symlinks=True,
                    ignore=shutil.ignore_patterns("corpus", "data", "dump", "exp"))
    shutil.copytree(ROOT / "egs/librispeech", egs / "librispeech", symlinks=True)
    env = {**os.environ, "LIBRISPEECH": str(root),
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(["bash", "run.sh", "--stop-stage", "0", "--parts", "dev-clean test-clean"],
                         cwd=egs / "librispeech/asr", env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for part in ("dev_clean", "test_clean"):
        assert len(read_data_dir(egs / "librispeech/asr/data" / part)) > 0
