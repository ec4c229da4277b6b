"""Every entry point against a table of bad inputs: each bad input gets a narvox error naming it,
nothing else in its batch is lost or changed, and the CLI prints one line per failure, never a
traceback."""
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from narvox.asr.api import ASR
from narvox.errors import NarvoxError
from narvox.runtime import OnnxASR

SR = 16000


def speech(tmp_path):
    """A real spoken sentence (espeak-ng) at 16 kHz, so the shipped models have words to find."""
    import shutil
    if not shutil.which("espeak-ng"):
        pytest.skip("espeak-ng missing")
    raw = tmp_path / "raw.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "the weather is lovely today"], check=True)
    from narvox.audio import read_audio
    return read_audio(raw, sample_rate=SR)[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """name -> (path, expected error fragment or None for a file that must decode)."""
    d = tmp_path_factory.mktemp("bad")
    good = speech(d)
    sf.write(d / "good.flac", good, SR)
    (d / "empty.wav").write_bytes(b"")
    (d / "corrupt.wav").write_bytes(b"RIFF....WAVEfmt garbage" * 10)
    sf.write(d / "full.wav", good, SR)
    (d / "truncated.wav").write_bytes((d / "full.wav").read_bytes()[:30])
    sf.write(d / "zero_frames.wav", np.zeros((0,), np.float32), SR)
    sf.write(d / "stereo.wav", np.stack([good, good], 1), SR)
    sf.write(d / "phone_8k.wav", good[::2], 8000)
    return d, {
        "good.flac": None,
        "missing.wav": "no such file",
        "empty.wav": "cannot decode",
        "corrupt.wav": "cannot decode",
        "truncated.wav": "",
        "zero_frames.wav": "empty",
        "stereo.wav": None,
        "phone_8k.wav": None,
        "touch pwned |": "no such file",
    }


@pytest.mark.parametrize("model", ["ctc", "paraformer"])
def test_asr_api_bad_files_fail_alone(files, model, tmp_path, monkeypatch):
    d, table = files
    monkeypatch.chdir(tmp_path)
    asr = ASR.from_pretrained(model)
    names = list(table)
    results = asr.transcribe([str(d / n) for n in names], batch_size=4)
    alone = asr.transcribe(str(d / "good.flac"))
    assert alone.text
    for name, r in zip(names, results):
        if table[name] is None:
            assert r.error is None, (name, r.error)
        else:
            assert r.error and name in r.error and table[name] in r.error, (name, r.error)
    assert results[0].text == alone.text and results[0].timestamps == alone.timestamps
    assert not (tmp_path / "pwned").exists()


def test_asr_api_bad_arrays_fail_alone(files):
    d, _ = files
    good, _ = sf.read(d / "good.flac", dtype="float32")
    asr = ASR.from_pretrained("ctc")
    alone = asr.transcribe(good)
    with_nan = good.copy()
    with_nan[1000] = np.nan
    with_inf = good.copy()
    with_inf[5] = np.inf
    inputs = [good, with_nan, with_inf, (good * 32767).astype(np.int16), np.stack([good, good]),
              (np.stack([good, good]), SR), (np.stack([good, good], 1), SR), (good[::2], 8000),
              np.zeros(0, np.float32), np.zeros(3, np.float32), good]
    results = asr.transcribe(inputs, batch_size=3)
    errors = [r.error for r in results]
    ok = [0, 3, 6, 7, 9, 10]
    assert all(errors[i] is None for i in ok), errors
    for i in set(range(len(inputs))) - set(ok):
        assert errors[i] and f"<array {i}>" in errors[i], (i, errors[i])
    assert results[0].text == results[10].text == alone.text
    assert results[3].text == alone.text and results[6].text == alone.text
    assert results[9].text == ""  # 3 samples: nothing to hear, no error


def test_asr_api_over_long_and_huge_batch(files):
    d, _ = files
    good, _ = sf.read(d / "good.flac", dtype="float32")
    asr = ASR.from_pretrained("ctc")
    long = np.concatenate([good, np.zeros(SR // 2, np.float32)] * 40)  # ~2 minutes
    r = asr.transcribe(long)
    assert r.error is None and r.duration == round(len(long) / SR, 3)
    assert r.timestamps == sorted(r.timestamps) and r.timestamps[-1] <= r.duration
    many = asr.transcribe([good] * 300, batch_size=64)
    assert len(many) == 300 and all(m.text == many[0].text for m in many)
    with pytest.raises(NarvoxError, match="batch_size"):
        asr.transcribe([good], batch_size=0)


def test_onnx_runtime_keeps_the_batch(files):
    d, _ = files
    good, _ = sf.read(d / "good.flac", dtype="float32")
    for name in ("ctc", "paraformer"):
        runtime = OnnxASR(name)
        feats = runtime.frontend(good)
        out = runtime.recognize([feats, feats[:2], feats])
        assert out[0] == out[2] == runtime.recognize([feats])[0] and out[1] == ([], [])
        with pytest.raises(NarvoxError, match="features 1 have shape"):
            runtime.recognize([feats, feats[:, :10]])


def test_cli_bad_files_one_line_each_and_no_traceback(files, tmp_path):
    d, table = files
    names = list(table)
    out = subprocess.run([sys.executable, "-m", "narvox", "transcribe", "--model", "ctc",
                          *[str(d / n) for n in names]], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    for name in names:
        if table[name] is None:
            assert str(d / name) in out.stdout
        else:
            assert sum(str(d / name) in line and table[name] in line
                       for line in out.stderr.splitlines()) == 1, (name, out.stderr)
    assert not (tmp_path / "pwned").exists()


def test_cli_codec_resynth_bad_files_one_line_and_no_traceback(files, tmp_path):
    d, table = files
    for name in ("missing.wav", "empty.wav", "corrupt.wav", "zero_frames.wav", "touch pwned |"):
        out = subprocess.run([sys.executable, "-m", "narvox", "codec", "resynth", str(d / name),
                              str(tmp_path / "out.wav"), "--runtime", "onnx"],
                             capture_output=True, text=True, cwd=tmp_path)
        assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and str(d / name) in lines[0] and table[name] in lines[0], lines
    ok = subprocess.run([sys.executable, "-m", "narvox", "codec", "resynth", str(d / "stereo.wav"),
                         str(tmp_path / "out.wav"), "--runtime", "onnx"], capture_output=True, text=True)
    assert ok.returncode == 0 and (tmp_path / "out.wav").is_file(), ok.stderr
    assert not (tmp_path / "pwned").exists()
