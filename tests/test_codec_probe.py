"""bench/codec_probe.py end to end on the tiny corpus, with the shipped codec and CTC recognizer."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CODEC = ROOT / "narvox/pretrained/codec/narvox"


def load_probe():
    # bench/ is scripts, not a package
    spec = importlib.util.spec_from_file_location("codec_probe", ROOT / "bench/codec_probe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spike_units_spread_tokens_over_frames():
    probe = load_probe()
    # 8 frames, tokens 5 5 6: the repeat needs a blank between its spikes
    path = [0, 5, 5, 0, 5, 6, 6, 0]
    log_probs = np.full((len(path), 8), -20.0, dtype=np.float32)
    log_probs[np.arange(len(path)), path] = 0.0
    units = probe.spike_units(log_probs, [5, 5, 6])
    assert units.tokens.tolist() == [5, 5, 5, 5, 5, 6, 6, 6]
    assert units.offsets.tolist() == [probe.MAX_OFFSET, 0, 1, 2, 0, 0, 1, 2]
    with pytest.raises(RuntimeError):  # more tokens than frames
        probe.spike_units(log_probs[:2], [5, 5, 6])


def test_fewest_pieces():
    probe = load_probe()
    assert probe.fewest_pieces("▁ship", {"▁", "▁s", "▁sh", "s", "h", "i", "p", "ip"}) == ["▁sh", "ip"]
    assert probe.fewest_pieces("▁x", {"▁", "a"}) is None


def test_probe_runs_on_tiny_corpus(tiny_corpus, tmp_path):
    probe = load_probe()
    out = tmp_path / "probe"
    # the shipped recognizer's vocabulary without its bpe.model, as tools/bundle_weights.py leaves it
    tokenizer = tmp_path / "tokenizer"
    tokenizer.mkdir()
    (tokenizer / "tokens.txt").write_bytes((ROOT / "narvox/pretrained/asr/ctc/tokens.txt").read_bytes())
    (tokenizer / "tokenizer.json").write_text(json.dumps({"kind": "bpe", "form": "word_start"}))
    # the same codec twice: one row each, and the same seed, data and steps give the same numbers
    result = probe.main(["--codecs", str(CODEC), str(CODEC), "--labels", "a", "b",
                         "--train", str(tiny_corpus / "train"), "--valid", str(tiny_corpus / "dev"),
                         "--train-utts", "6", "--valid-utts", "3", "--steps", "15", "--threads", "1",
                         "--tokenizer", str(tokenizer),
                         "--out", str(out)])
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert [r["label"] for r in saved["rows"]] == ["a", "b"]
    assert saved["train_utts"] + saved["valid_utts"] + len(saved["unaligned"]) == 9
    for r in saved["rows"]:
        assert r["codec"]["codec"] == "narvox" and r["train_steps"] == 15
        assert math.isfinite(r["valid_ce"]) and 0 <= r["valid_accuracy"] <= 1
        assert math.isfinite(r["unigram_ce"]) and r["valid_frames"] > 0
        assert r["last_loss"] < r["first_loss"]
    assert saved["rows"][0]["valid_ce"] == pytest.approx(saved["rows"][1]["valid_ce"], rel=1e-5)
    assert "| a | 50 Hz | 15 |" in out.with_suffix(".md").read_text()
