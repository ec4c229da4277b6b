"""narvox.ASR and `narvox transcribe` on tiny exported bundles."""
import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from narvox.asr.api import ASR
from narvox.text.tokens import tokens_to_text
from narvox.asr.segment import has_speech, split_at_silences
from tests.test_asr_models import bundles  # noqa: F401  (fixture)


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 4 * t)) +
            0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_batch_with_bad_file_silence_stereo_and_arrays(bundles, tmp_path):  # noqa: F811
    asr = ASR.from_pretrained(bundles["paraformer"][0])
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.5), 16000)
    stereo = tmp_path / "stereo_44k.flac"
    x = speechlike(1.5, 44100)
    sf.write(stereo, np.stack([x, x], 1), 44100)
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    results = asr.transcribe([good, broken, silent, stereo, speechlike(1.0), (x, 44100)], batch_size=4)
    assert [r.error is None for r in results] == [True, False, True, True, True, True]
    assert "broken.wav: cannot decode" in results[1].error
    assert results[2].text == "" and results[2].tokens == []
    for r in (results[0], results[3], results[4]):
        assert len(r.tokens) == len(r.timestamps) and r.text == tokens_to_text(r.tokens)
    # the same audio at 44.1 kHz stereo and 16 kHz mono is heard the same way
    assert results[3].tokens == results[5].tokens
    single = asr.transcribe(str(good))
    assert single.text == results[0].text


def test_long_recordings_are_split_at_silences_and_stitched(bundles):  # noqa: F811
    sr = 16000
    pause = np.zeros(int(0.4 * sr), dtype=np.float32)
    audio = np.concatenate([speechlike(2.0, seed=1), pause, speechlike(2.0, seed=2), pause, speechlike(1.0, seed=3)])
    pieces = split_at_silences(audio, sr, max_seconds=3.0, search_seconds=1.5)
    assert len(pieces) == 3 and pieces[0][0] == 0 and pieces[-1][1] == len(audio)
    for (_, end), (start, _) in zip(pieces, pieces[1:]):
        assert end == start and np.abs(audio[end - 800:end + 800]).max() < 0.05  # cut inside a pause
    asr = ASR.from_pretrained(bundles["ctc"][0], max_seconds=3.0)
    result = asr.transcribe(audio)
    assert result.timestamps == sorted(result.timestamps)
    assert not result.timestamps or result.timestamps[-1] <= len(audio) / sr
    assert has_speech(audio, sr) and not has_speech(np.zeros(sr, dtype=np.float32), sr)


def test_torch_model_dir_and_unknown_model(bundles):  # noqa: F811
    _, model_dir = bundles["paraformer"]
    torch_asr = ASR.from_pretrained(model_dir)
    onnx_asr = ASR.from_pretrained(bundles["paraformer"][0])
    audio = speechlike(1.2)
    assert torch_asr.transcribe(audio).tokens == onnx_asr.transcribe(audio).tokens
    try:
        ASR.from_pretrained("no-such-model")
    except Exception as e:
        assert "neither a shipped model" in str(e)
    else:
        raise AssertionError("an unknown model must raise")


def test_cli_transcribe_formats(bundles, tmp_path):  # noqa: F811
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(1.0), 16000)
    cmd = [sys.executable, "-m", "narvox", "transcribe", "--model", str(bundles["ctc"][0]), str(wav)]
    out = subprocess.run(cmd + ["--format", "json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)
    assert row["source"] == str(wav) and len(row["tokens"]) == len(row["timestamps"])
    srt = subprocess.run(cmd + ["--format", "srt"], capture_output=True, text=True).stdout
    assert srt.startswith(f"# {wav}")
    missing = subprocess.run(cmd + [str(tmp_path / "missing.wav")], capture_output=True, text=True)
    assert missing.returncode == 1 and "missing.wav: ERROR" in missing.stderr
    assert str(wav) in missing.stdout  # the good file is still transcribed
