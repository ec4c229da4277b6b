import numpy as np
import pytest

from narvox.errors import AudioError
from narvox.features import Cmvn, CmvnAccumulator, apply_lfr, fbank, lfr_length, log_mel
from tests.conftest import tone


def test_fbank_shape_and_int16_scaling():
    feats = fbank(tone(1.0))
    assert feats.shape == (98, 80) and feats.dtype == np.float32  # snip_edges: 1 + (16000-400)//160
    quiet = fbank(tone(1.0) / 32768.0)
    assert feats.mean() - quiet.mean() == pytest.approx(2 * np.log(32768.0), rel=0.05)
    with pytest.raises(AudioError, match="shorter than one"):
        fbank(np.zeros(100, dtype=np.float32))


def test_fbank_matches_torchaudio_kaldi():
    import torch
    import torchaudio
    x = tone(1.0) + 0.01 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    ref = torchaudio.compliance.kaldi.fbank(torch.from_numpy(x * 32768)[None], num_mel_bins=80,
                                            dither=0.0, window_type="hamming", snip_edges=True)
    np.testing.assert_allclose(fbank(x), ref.numpy(), atol=2e-3)


def reference_lfr(feats, m, n):
    """FunASR's definition, written as the loop it documents."""
    t = feats.shape[0]
    padded = np.vstack([np.repeat(feats[:1], (m - 1) // 2, 0), feats])
    out = []
    for i in range(-(-t // n)):
        window = padded[i * n:i * n + m]
        if len(window) < m:
            window = np.vstack([window, np.repeat(feats[-1:], m - len(window), 0)])
        out.append(window.reshape(-1))
    return np.stack(out)


@pytest.mark.parametrize("t", [1, 5, 6, 7, 13, 100])
def test_lfr_matches_reference(t):
    feats = np.random.default_rng(t).standard_normal((t, 4)).astype(np.float32)
    out = apply_lfr(feats, 7, 6)
    assert out.shape == (lfr_length(t, 6), 28)
    np.testing.assert_array_equal(out, reference_lfr(feats, 7, 6))


def test_cmvn_am_mvn_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    acc = CmvnAccumulator()
    chunks = [rng.normal(3.0, 2.0, (500, 6)) for _ in range(4)]
    for c in chunks:
        acc.add(c)
    cmvn = acc.result()
    normed = cmvn(np.vstack(chunks))
    np.testing.assert_allclose(normed.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(normed.std(0), 1, atol=1e-4)
    cmvn.save(tmp_path / "am.mvn")
    text = (tmp_path / "am.mvn").read_text()
    assert "<AddShift> 6 6" in text and "<Rescale> 6 6" in text
    again = Cmvn.load(tmp_path / "am.mvn")
    np.testing.assert_allclose(again.neg_mean, cmvn.neg_mean, rtol=1e-6)
    np.testing.assert_allclose(again.inv_stddev, cmvn.inv_stddev, rtol=1e-6)


def test_log_mel():
    import torch
    out = log_mel(torch.from_numpy(tone(1.0))[None], 16000, n_fft=512, hop_length=160, n_mels=64)
    assert out.shape == (1, 64, 101) and torch.isfinite(out).all()
