"""bench/asr_real.py reads PocketSphinx's Sphinx-format transcriptions into (wav, text) pairs and
names the file of a line it cannot read (the recognizers it scores are tested elsewhere)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from asr_real import markdown, read_set  # noqa: E402


def test_read_set_pairs_each_wav_with_its_words(tmp_path):
    (tmp_path / "cards").mkdir()
    (tmp_path / "cards" / "cards.transcription").write_text(
        "<s> ten of clubs  </s> (001)\n<s> five five </s> (004)\n")
    assert read_set(tmp_path, "cards") == [(tmp_path / "cards" / "001.wav", "ten of clubs"),
                                          (tmp_path / "cards" / "004.wav", "five five")]
    (tmp_path / "cards" / "cards.transcription").write_text("ten of clubs (001)\n")
    with pytest.raises(ValueError, match="cards.transcription: cannot read the line"):
        read_set(tmp_path, "cards")


def test_markdown_has_a_column_per_set():
    rows = [{"system": s, "set": x, "wer": 0.5, "cer": 0.25, "utterances": 5}
            for s in ("ctc", "pocketsphinx") for x in ("cards", "all")]
    table = markdown(rows, [{"system": "ctc", "set": "cards", "reference": "ten of clubs", "hypothesis": "ten of"}])
    assert "| ctc | 50.0 / 25.0 | 50.0 / 25.0 |" in table and "cards WER / CER %" in table
    assert "| ctc | cards | ten of clubs | ten of |" in table
