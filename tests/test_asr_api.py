"""narvox.ASR and `narvox transcribe` on tiny exported bundles."""
import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from narvox.asr.api import ASR, EARLY_STOP_SECONDS
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
    assert srt.startswith("1\n00:00:00,")  # SubRip, checked in depth in test_cli.py
    missing = subprocess.run(cmd + [str(tmp_path / "missing.wav")], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.count("missing.wav: no such file") == 1
    assert str(wav) in missing.stdout  # the good file is still transcribed


def test_a_path_ending_in_a_pipe_is_a_file_name_never_a_command(bundles, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    asr = ASR.from_pretrained(bundles["ctc"][0])
    name = "touch pwned |"
    result = asr.transcribe(name)
    assert not (tmp_path / "pwned").exists()
    assert result.error == f"{name}: no such file"
    sf.write(tmp_path / name, speechlike(1.0), 16000, format="WAV")  # a real file of that name
    assert asr.transcribe(name).error is None
    cli = subprocess.run([sys.executable, "-m", "narvox", "transcribe", "--model", str(bundles["ctc"][0]),
                          "touch pwned2 |"], capture_output=True, text=True)
    assert cli.returncode == 1 and not (tmp_path / "pwned2").exists()


def test_bad_arrays_fail_alone_with_a_named_error(bundles):  # noqa: F811
    asr = ASR.from_pretrained(bundles["paraformer"][0])
    good = speechlike(1.0)
    nan_inside = good.copy()
    nan_inside[100] = np.nan
    pcm16 = (good * 32767).astype(np.int16)
    results = asr.transcribe([good, nan_inside, np.full(8000, np.nan, np.float32), pcm16,
                              good.astype(np.int32), np.stack([good, good]), (np.stack([good, good]), 16000),
                              (np.stack([good, good], 1), 16000), np.zeros(0, np.float32), (good, 0)])
    errors = [r.error for r in results]
    assert errors[0] is None and errors[3] is None and errors[7] is None
    assert "<array 1>" in errors[1] and "NaN" in errors[1]
    assert "<array 2>" in errors[2] and "NaN" in errors[2]
    assert "int32" in errors[4]
    assert "mono [T]" in errors[5]
    assert "[channels, T]" in errors[6]
    assert "empty" in errors[8]
    assert "sample rate" in errors[9]
    assert results[3].tokens == results[0].tokens  # int16 PCM is scaled, not read as huge floats
    assert results[7].tokens == results[0].tokens  # [T, 2] stereo is mixed to mono


def test_narrowband_input_is_warned_about_once_by_name(bundles, tmp_path, caplog):  # noqa: F811
    asr = ASR.from_pretrained(bundles["ctc"][0])
    phone = tmp_path / "phone.wav"
    sf.write(phone, speechlike(1.0, sr=8000), 8000)
    with caplog.at_level("WARNING"):
        assert asr.transcribe(phone).error is None
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(phone) in warnings[0] and "8000 Hz" in warnings[0]


def test_pieces_stay_within_the_longest_training_utterance(bundles):  # noqa: F811
    import json
    bundle = bundles["ctc"][0]
    meta = json.loads((bundle / "narvox.json").read_text())
    assert meta["max_seconds"] > 0
    assert ASR.from_pretrained(bundle).max_seconds == meta["max_seconds"]
    assert ASR.from_pretrained(bundle, max_seconds=1000).max_seconds == meta["max_seconds"]
    assert ASR.from_pretrained(bundle, max_seconds=2).max_seconds == 2


class _StopsEarly:
    """A backend that, like Paraformer past its training lengths, stops after 3 s of any piece."""

    def __init__(self, frontend):
        self.frontend, self.symbols, self.max_seconds, self.calls = frontend, ["a"] * 8, 30.0, []
        self.symbol_form = None

    def recognize(self, audio):
        self.calls.append([len(a) / 16000 for a in audio])
        return [([4] * n, [0.5 * i for i in range(n)])
                for n in (int(min(len(a) / 16000, 3.0) / 0.5) for a in audio)]


def test_a_piece_whose_tokens_stop_early_is_decoded_again_in_smaller_pieces(bundles, caplog):  # noqa: F811
    asr = ASR.from_pretrained(bundles["ctc"][0])
    backend = _StopsEarly(asr.backend.frontend)
    asr = ASR(backend, max_seconds=20)
    audio = np.concatenate([speechlike(2.5, seed=s) for s in range(8)])  # 20 s, no pauses
    with caplog.at_level("WARNING"):
        result = asr.transcribe(audio)
    assert max(backend.calls[-1]) < 3.0 + 1.0 + EARLY_STOP_SECONDS  # split until it hears them out
    assert result.timestamps == sorted(result.timestamps) and result.timestamps[-1] > 17.0
    assert result.duration == 20.0
