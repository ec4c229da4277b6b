"""Each augmentation does what it says to the signal (length, band, SNR, level, room), seeded."""
import numpy as np
import pytest

from narvox.data import augment
from narvox.data.augment import (Compression, Gain, Noise, Pitch, Reverb, Speed, Telephone, VocalTract,
                                 WaveAugment, colored_noise, mix_at_snr, rms, telephone_channel)

SR = 16000


def speechlike(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A harmonic tone at 150 Hz with harmonics up to 7 kHz, amplitude-modulated like syllables."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 47))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.2 * x * envelope / np.max(np.abs(x))).astype(np.float32)


def band_energy(x: np.ndarray, sr: int, low: float, high: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(spectrum[(f >= low) & (f < high)].sum() / spectrum.sum())


def rng(seed=0):
    return np.random.default_rng(seed)


def test_speed_changes_length_by_the_factor():
    x = speechlike(1.0)
    for factor in (0.9, 1.1):
        y = Speed(factors=(factor,))(x, SR, rng())
        assert abs(len(y) - len(x) / factor) <= 2


def test_pitch_keeps_length_and_moves_the_spectrum():
    x = speechlike(1.0)
    y = Pitch(semitones=(4, 4))(x, SR, rng())
    assert len(y) == len(x)
    centroid = lambda s: np.sum(np.fft.rfftfreq(len(s), 1 / SR) * np.abs(np.fft.rfft(s))) / np.abs(np.fft.rfft(s)).sum()
    assert centroid(y) > 1.1 * centroid(x)


@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_noise_is_mixed_at_the_drawn_snr(snr):
    x = speechlike(1.0)
    y = Noise(snr_db=(snr, snr))(x, SR, rng())
    measured = 20 * np.log10(rms(x) / rms(y - x))
    assert len(y) == len(x) and abs(measured - snr) < 0.01


def test_noise_colors_and_babble():
    white, brown = colored_noise(32000, 0.0, rng()), colored_noise(32000, 2.0, rng())
    assert band_energy(brown, SR, 0, 500) > 0.9 > band_energy(white, SR, 0, 500) + 0.5
    talkers = [speechlike(2.0, seed=s) for s in range(3)]
    source = lambda k, r: talkers[:k]
    x = speechlike(1.0)
    y = Noise(snr_db=(5, 5), babble=1.0, babble_source=source)(x, SR, rng())
    assert abs(20 * np.log10(rms(x) / rms(y - x)) - 5) < 0.01


def test_reverb_keeps_length_and_level_and_adds_a_tail():
    x = np.zeros(SR, dtype=np.float32)
    x[:1600] = speechlike(0.1)
    reverb = Reverb(rt60=(0.6, 0.6), bank_size=1)
    y = reverb(x, SR, rng())
    assert len(y) == len(x) and abs(rms(y) / rms(x) - 1) < 1e-3
    assert rms(y[4000:8000]) > 0.01 * rms(y[:1600])  # energy 150-400 ms after the sound stopped
    assert not x[4000:8000].any()
    again = reverb(x, SR, rng(1))  # the bank is full: its one response is reused
    assert np.allclose(again, y, atol=1e-6)


def test_room_impulse_response_decays_at_the_asked_rate():
    import pyroomacoustics as pra
    for rt60 in (0.3, 0.8):
        h = augment.room_impulse_response(SR, rt60, rng())
        measured = pra.experimental.measure_rt60(h, fs=SR)
        assert 0.8 * rt60 < measured < 1.2 * rt60, (rt60, measured)


def test_telephone_band_limits_to_300_3400_hz():
    x = speechlike(1.0)
    for codec in ("ULAW", "GSM610"):
        narrow = telephone_channel(x, SR, codec)
        assert len(narrow) == len(x) // 2
        y = Telephone(codecs=(codec,))(x, SR, rng())
        assert len(y) == len(x)
        assert band_energy(y, SR, 3600, 8000) < 0.05 * band_energy(x, SR, 3600, 8000)
        assert band_energy(y, SR, 0, 250) < 0.1 * band_energy(x, SR, 0, 250)


def test_compression_round_trips_mp3_and_opus():
    x = speechlike(1.0)
    for fmt in ("mp3", "opus"):
        y = Compression(formats=(fmt,))(x, SR, rng())
        assert len(y) == len(x)
        assert not np.allclose(y, x, atol=1e-4)  # it is lossy
        assert rms(y) > 0.3 * rms(x)


def test_gain_and_clipping():
    x = speechlike(1.0)
    quiet = Gain(db=(-20, -20), clip=0.0)(x, SR, rng())
    assert np.allclose(quiet, x * 0.1, atol=1e-6)
    clipped = Gain(db=(0, 0), clip=1.0)(x, SR, rng())
    assert np.max(np.abs(clipped)) == 1.0 and np.mean(np.abs(clipped) == 1.0) > 0.01


def test_vocal_tract_warp_moves_the_mel_axis():
    feats = np.tile(np.arange(80, dtype=np.float32), (5, 1))
    assert np.allclose(VocalTract(warp=(1.0, 1.0))(feats, rng()), feats)
    stretched = VocalTract(warp=(1.25, 1.25))(feats, rng())
    assert np.allclose(stretched[:, 40], 32.0)  # output bin 40 reads input bin 40 / 1.25


def test_chain_is_seeded_and_rejects_unknown_names():
    chain = WaveAugment({"speed": {"p": 1.0}, "noise": {"p": 1.0, "snr_db": [10, 10]}, "gain": {"p": 1.0}})
    x = speechlike(1.0)
    assert np.array_equal(chain(x, SR, rng(3)), chain(x, SR, rng(3)))
    assert not np.array_equal(chain(x, SR, rng(3)), chain(x, SR, rng(4)))
    with pytest.raises(ValueError, match="unknown augmentation.*echo"):
        WaveAugment({"echo": {}})


def test_mix_at_snr_tiles_short_noise():
    x = speechlike(1.0)
    y = mix_at_snr(x, colored_noise(1000, 1.0, rng()), 10.0)
    assert len(y) == len(x)


def test_training_dataset_augments_audio_and_validation_does_not(tiny_dumps, tmp_path):
    from narvox.asr.frontend import AsrFrontend
    from narvox.features import FbankConfig
    from narvox.recipes.asr_data import AsrDataModule, AsrDataset
    from narvox.text.tokens import load_tokenizer
    train, valid, lang = tiny_dumps
    tokenizer = load_tokenizer(lang)
    frontend = AsrFrontend(fbank_config=FbankConfig.preset("kaldi"))
    config = {"noise": {"p": 1.0, "snr_db": [5, 5]}, "speed": {"p": 1.0, "factors": [1.1]}}
    ds = AsrDataset(train, tokenizer, frontend, augment=config, vocal_tract={"p": 1.0}, seed=7)
    clean = AsrDataset(train, tokenizer, frontend)
    feats, target = ds[0]
    assert target == clean[0][1]
    assert abs(len(feats) - len(clean[0][0]) / 1.1) <= 2  # speed 1.1 shortens it
    again = AsrDataset(train, tokenizer, frontend, augment=config, vocal_tract={"p": 1.0}, seed=7)[0][0]
    assert np.array_equal(feats, again)  # the same seed, the same first load
    assert not np.array_equal(ds[0][0], feats)  # the second load draws anew
    data = AsrDataModule(train, valid, tokenizer, frontend, augment=config)
    data.setup()
    assert data.train.augment is not None and data.valid.augment is None
    # clean_epochs: an item's first loads are the clean dump, then augmentation starts
    late = AsrDataset(train, tokenizer, frontend, augment=config, vocal_tract={"p": 1.0}, seed=7, clean_epochs=2)
    assert np.array_equal(late[0][0], clean[0][0]) and np.array_equal(late[0][0], clean[0][0])
    assert abs(len(late[0][0]) - len(clean[0][0]) / 1.1) <= 2


def test_a_dump_without_wav_scp_cannot_be_augmented(tiny_dumps, tmp_path):
    import shutil
    from narvox.asr.frontend import AsrFrontend
    from narvox.recipes.asr_data import AsrDataset
    from narvox.text.tokens import load_tokenizer
    train, _, lang = tiny_dumps
    old = shutil.copytree(train, tmp_path / "old")
    (old / "wav.scp").unlink()
    with pytest.raises(FileNotFoundError, match="old: no wav.scp"):
        AsrDataset(old, load_tokenizer(lang), AsrFrontend(), augment={"gain": {}})


@pytest.mark.parametrize("condition", ["tel", "noisy", "reverb"])
def test_robustness_test_set(make_data_dir, tmp_path, condition):
    from narvox.audio import read_audio
    from narvox.data import read_data_dir
    from narvox.recipes.asr_prep import main
    data, path = make_data_dir(n=4)
    out = tmp_path / f"test_{condition}"
    main(["degrade", "--data", str(path), "--condition", condition, "--out", str(out), "--nj", "1"])
    degraded = read_data_dir(out)
    assert degraded.text == data.text and degraded.utt2spk == data.utt2spk
    for utt in data.utt_ids:
        clean, _ = read_audio(data.wav_scp[utt])
        y, sr = read_audio(degraded.wav_scp[utt])
        assert sr == (8000 if condition == "tel" else 16000)
        assert len(y) == (len(clean) // 2 if condition == "tel" else len(clean))
        if condition == "noisy":  # 10 dB, up to 16-bit rounding
            assert abs(20 * np.log10(rms(clean) / rms(y - clean)) - 10) < 0.1
    again = tmp_path / "again"
    main(["degrade", "--data", str(path), "--condition", condition, "--out", str(again), "--nj", "2"])
    utt = data.utt_ids[0]
    assert np.array_equal(read_audio(degraded.wav_scp[utt])[0], read_audio(read_data_dir(again).wav_scp[utt])[0])
