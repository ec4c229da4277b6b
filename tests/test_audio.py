import numpy as np
import pytest
import soundfile as sf

from narvox.audio import as_float_audio, duration, read_audio, resample, write_audio
from narvox.errors import AudioError
from tests.conftest import tone


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
def test_round_trip_formats(tmp_path, ext):
    path = tmp_path / f"x.{ext}"
    sf.write(path, tone(), 16000)
    samples, sr = read_audio(path)
    assert sr == 16000 and samples.dtype == np.float32
    assert abs(len(samples) - 16000) < 200
    assert abs(duration(path) - 1.0) < 0.02


def test_stereo_is_mixed_down_and_resampled(tmp_path):
    path = tmp_path / "stereo.wav"
    left, right = tone(), np.zeros(16000, dtype=np.float32)
    sf.write(path, np.stack([left, right], axis=1), 16000)
    samples, sr = read_audio(path, sample_rate=8000)
    assert sr == 8000 and samples.ndim == 1 and len(samples) == 8000
    np.testing.assert_allclose(np.abs(samples).max(), 0.15, atol=0.01)
    both, _ = read_audio(path, mono=False)
    assert both.shape == (16000, 2)


def test_segment(tmp_path):
    path = tmp_path / "x.wav"
    write_audio(path, tone(2.0), 16000)
    samples, _ = read_audio(path, start=0.5, end=1.5)
    assert len(samples) == 16000
    with pytest.raises(AudioError, match="after the audio's end"):
        read_audio(path, start=5.0)


def test_wav_scp_pipe(tmp_path):
    path = tmp_path / "x.flac"
    write_audio(path, tone(), 16000)
    samples, sr = read_audio(f"cat {path} |", allow_pipe=True)
    assert sr == 16000 and len(samples) == 16000
    assert abs(duration(f"cat {path} |", allow_pipe=True) - 1.0) < 1e-6


def test_a_pipe_runs_only_when_asked(tmp_path, monkeypatch):
    """A name from a user is a path: `read_audio` and `duration` never run it by default."""
    monkeypatch.chdir(tmp_path)
    for read in (read_audio, duration):
        with pytest.raises(AudioError, match="no such file"):
            read("touch pwned |")
        assert not (tmp_path / "pwned").exists()


def test_int16_arrays_are_scaled_and_bad_arrays_named():
    pcm = (tone() * 32767).astype(np.int16)
    np.testing.assert_allclose(as_float_audio(pcm), tone(), atol=1e-4)
    with pytest.raises(AudioError, match="<x>: audio of dtype int32"):
        as_float_audio(pcm.astype(np.int32), "<x>")
    with pytest.raises(AudioError, match="<x>: audio holds NaN"):
        as_float_audio(np.array([0.0, np.nan], np.float32), "<x>")


def test_resample_length():
    assert len(resample(tone(1.0), 16000, 24000)) == 24000


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "nope.wav")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.wav"
    path.write_bytes(b"RIFF\x00\x00garbage" * 10)
    with pytest.raises(AudioError, match="bad.wav: cannot decode"):
        read_audio(path)


def test_empty_audio(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        read_audio(path)
    with pytest.raises(AudioError, match="empty"):
        duration(path)


def test_non_finite_samples(tmp_path):
    path = tmp_path / "nan.wav"
    x = tone()
    x[100] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="nan.wav: audio holds NaN"):
        read_audio(path)
    with pytest.raises(AudioError, match="NaN"):
        write_audio(tmp_path / "out.wav", x, 16000)


def test_failing_pipe():
    with pytest.raises(AudioError, match="exit code 3"):
        read_audio("sh -c 'echo broken >&2; exit 3' |", allow_pipe=True)
    with pytest.raises(AudioError, match="produced no audio"):
        read_audio("true |", allow_pipe=True)
