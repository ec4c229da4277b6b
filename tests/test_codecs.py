import numpy as np
import pytest
import torch

from narvox.codecs import load_codec
from narvox.codecs.model import CodecConfig, CodecModel
from narvox.codecs.narvox_codec import NarvoxCodec, save_codec_dir
from narvox.errors import NarvoxError

TINY = dict(sample_rate=16000, ratios=[8, 5, 4, 2], n_filters=4, dimension=16, lstm_layers=1,
            n_codebooks=4, codebook_size=32, kmeans_iters=2)
TINY_VOCOS = dict(TINY, decoder="vocos", decoder_dim=16, decoder_hidden=32, decoder_layers=2)


def speechlike(seconds: float, sr: int = 16000, seed: int = 0) -> np.ndarray:
    """A pitch glide with syllable-rate amplitude modulation and a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    x = sum(np.sin(2 * np.pi * np.cumsum(k * f0) / sr) / k for k in range(1, 6))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.2 * x + 0.005 * rng.standard_normal(len(t))).astype(np.float32)


def tiny_model(seed: int = 0, config: dict = TINY) -> CodecModel:
    """A tiny codec whose codebooks were k-means initialised by one training-mode pass."""
    torch.manual_seed(seed)
    model = CodecModel(CodecConfig(**config))
    model.train()
    model(torch.from_numpy(np.stack([speechlike(1.0, seed=s) for s in range(4)])))
    return model.eval()


@pytest.fixture(scope="module")
def tiny_codec_dir(tmp_path_factory):
    return save_codec_dir(tiny_model(), tmp_path_factory.mktemp("codec"))


def test_encode_decode_shapes_and_rates(tiny_codec_dir):
    codec = load_codec(tiny_codec_dir)
    assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks, codec.codebook_size) == (16000, 50.0, 4, 32)
    wav = np.stack([speechlike(0.5), speechlike(0.5, seed=1)])
    codes = codec.encode(wav[:, :7777])
    assert codes.shape == (2, 4, codec.num_frames(7777)) == (2, 4, 25)
    assert codes.dtype == torch.long and 0 <= codes.min() and codes.max() < 32
    audio = codec.decode(codes)
    assert audio.shape == (2, 25 * 320)
    # another input rate is resampled: 0.5 s at 8 kHz is still 25 frames
    assert codec.encode(speechlike(0.5, sr=8000), sample_rate=8000).shape == (1, 4, 25)


def test_tensors_take_the_same_checks_as_arrays(tiny_codec_dir):
    codec = load_codec(tiny_codec_dir)
    pcm = (speechlike(0.3) * 32768).astype(np.int16)
    codes = codec.encode(torch.from_numpy(pcm))
    assert torch.equal(codes, codec.encode(pcm.astype(np.float32) / 32768))
    assert codec.decode(codes, lengths=torch.tensor([15])).shape == (1, 15 * 320)
    with pytest.raises(NarvoxError, match="dtype float32"):
        codec.decode(codes.float())


def test_residual_codes_nest_and_bitrates(tiny_codec_dir):
    wav = speechlike(0.6)
    full = load_codec(tiny_codec_dir).encode(wav)
    two = NarvoxCodec.load(tiny_codec_dir, n_codebooks=2)
    assert two.encode(wav).shape[1] == 2
    assert torch.equal(two.encode(wav), full[:, :2])
    assert two.bitrate_kbps == pytest.approx(2 * 50 * 5 / 1000)
    assert two.codebooks_for(0.75) == 3
    with pytest.raises(NarvoxError, match="serves"):
        two.codebooks_for(5.0)


def test_bad_codec_directories_are_named(tiny_codec_dir, tmp_path):
    with pytest.raises(NarvoxError, match="no codec called"):
        load_codec(tmp_path / "nothing")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "codec.yaml").write_text((tiny_codec_dir / "codec.yaml").read_text())
    with pytest.raises(NarvoxError, match="model.pt is missing"):
        load_codec(tmp_path / "broken")


def assert_batch_independent(codec, items: list[np.ndarray], atol: float = 1e-5):
    """Each item alone vs zero-padded in a batch with an item 3x its length: the same codes on its
    own frames, and (decoding its codes beside random padding, told its length) the same audio.
    `codec` is a PyTorch Codec or an OnnxCodec: both take and give arrays."""
    rng = np.random.default_rng(0)
    for wav in items:
        frames, width = codec.num_frames(len(wav)), 3 * len(wav)
        longer = speechlike(width / codec.sample_rate, sr=codec.sample_rate, seed=7)[:width]
        alone = np.asarray(codec.encode(wav))[0]
        batch = np.asarray(codec.encode(np.stack([np.pad(wav, (0, width - len(wav))), longer])))
        assert alone.shape[1] == frames
        np.testing.assert_array_equal(batch[0, :, :frames], alone)
        padding = rng.integers(0, codec.codebook_size, (alone.shape[0], batch.shape[2] - frames))
        codes = np.stack([np.concatenate([alone, padding], 1), batch[1]])
        decoded = np.asarray(codec.decode(codes, lengths=[frames, batch.shape[2]]))
        np.testing.assert_allclose(decoded[0, : frames * codec.hop_length], np.asarray(codec.decode(alone[None]))[0],
                                   atol=atol)


def test_rows_of_a_batch_are_coded_as_alone(tiny_codec_dir):
    """SEANet looks up to 3.7 frames past an item's end: until every item was padded alone as in a
    batch, the shipped codec changed 46 of 1514 frames (the last 1-4 of items) with batch-mates."""
    items = [speechlike(0.3, seed=1)[:4801], speechlike(0.73, seed=2), speechlike(0.05, seed=3)]
    assert_batch_independent(load_codec(tiny_codec_dir), items)


def test_vocos_decoder_rows_of_a_batch_are_decoded_as_alone(tmp_path):
    """The ConvNeXt blocks look (1 + layers) * 3 frames ahead and the ISTFT one more: the codec
    pads every item with that many (its context_frames), alone as in a batch."""
    codec = load_codec(save_codec_dir(tiny_model(config=TINY_VOCOS), tmp_path))
    assert codec.context_frames == 10
    items = [speechlike(0.3, seed=1)[:4801], speechlike(0.73, seed=2), speechlike(0.05, seed=3)]
    assert_batch_independent(codec, items)


def test_a_bias_free_encoder_encodes_silence_as_zero_and_stays_so():
    """encoder_bias=False: the latent is a function of the input from the start (see CodecConfig)."""
    torch.manual_seed(0)
    model = CodecModel(CodecConfig(**TINY, encoder_bias=False))
    assert not model.encoder(torch.zeros(1, 1, 3200)).abs().max()
    biases = [p for n, p in model.encoder.named_parameters() if "bias" in n]
    assert biases and not any(p.requires_grad for p in biases)


def test_inverse_stft_is_torch_istft():
    from narvox.codecs.vocos import InverseSTFT
    wav = torch.from_numpy(speechlike(0.5))[None]
    n_fft, hop = 640, 160
    spec = torch.stft(wav, n_fft, hop, window=torch.hann_window(n_fft), center=True, return_complex=True)
    ours = InverseSTFT(n_fft, hop)(torch.cat([spec.real, spec.imag], 1))
    theirs = torch.istft(spec, n_fft, hop, window=torch.hann_window(n_fft), center=True)
    # the same up to the float16 rounding of the kernel (as the ONNX bundle stores it)
    torch.testing.assert_close(ours[:, : theirs.size(1)], theirs, atol=2e-3, rtol=0)
    torch.testing.assert_close(ours[:, : wav.size(1)], wav, atol=2e-3, rtol=0)


def test_saved_weights_identify_the_codec(tiny_codec_dir, tmp_path):
    a, b = load_codec(tiny_codec_dir), load_codec(tiny_codec_dir)
    assert a.identity() == b.identity()
    other = load_codec(save_codec_dir(tiny_model(seed=1), tmp_path / "other"))
    assert other.identity()["weights"] != a.identity()["weights"]


def test_encodec_backend_loads_a_state_dict_and_matches_the_package(tmp_path):
    from encodec import EncodecModel
    from narvox.codecs.encodec_codec import CHECKPOINT, EncodecCodec
    torch.manual_seed(0)
    reference = EncodecModel.encodec_model_24khz(pretrained=False).eval()
    for layer in reference.quantizer.vq.layers:  # untrained codebooks are zeros: give them entries
        layer._codebook.embed.normal_()
        layer._codebook.inited.fill_(1)
    path = tmp_path / CHECKPOINT
    torch.save(reference.state_dict(), path)
    codec = load_codec(path, bandwidth=3.0)
    assert isinstance(codec, EncodecCodec)
    assert (codec.sample_rate, codec.frame_rate, codec.n_codebooks, codec.codebook_size) == (24000, 75.0, 4, 1024)
    wav = torch.from_numpy(speechlike(0.4, sr=24000))[None]
    reference.set_target_bandwidth(3.0)
    with torch.no_grad():
        [(expected, _)] = reference.encode(wav[:, None])
    codes = codec.encode(wav)
    assert torch.equal(codes, expected)
    with torch.no_grad():
        assert torch.allclose(codec.decode(codes), reference.decode([(expected, None)])[:, 0], atol=1e-5)
    # 16 kHz input is resampled to 24 kHz first
    assert codec.encode(speechlike(0.4), sample_rate=16000).shape == (1, 4, 30)


def test_encodec_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(NarvoxError, match=r"encodec_24khz-d7cc33bc.th.*hub/checkpoints"):
        load_codec("encodec")
    bad = tmp_path / "bad.th"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(NarvoxError, match="not an EnCodec"):
        load_codec(bad)


def _train_on_one_batch(tmp_path, model: dict, batch: dict, steps: int = 20,
                        loss: dict | None = None) -> dict[str, list[float]]:
    """The real training step (generator, then from step 5 the MS-STFT GAN) on one repeated batch;
    the logged training losses of every step."""
    import pytorch_lightning as L
    from torch.utils.data import DataLoader
    from narvox.recipes.codec_task import CodecTask

    class Record(L.Callback):
        def __init__(self):
            self.losses: dict[str, list[float]] = {}

        def on_train_batch_end(self, trainer, *args):
            for name, value in trainer.callback_metrics.items():
                if name.startswith("train_"):
                    self.losses.setdefault(name[6:], []).append(float(value))

    torch.manual_seed(0)
    task = CodecTask(model, {"adversarial_from": 5, "quantizer_dropout": 0.5, **(loss or {})},
                     {"lr": 3e-3, "warmup_steps": 1, "max_steps": steps})
    record = Record()
    trainer = L.Trainer(max_epochs=100, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[record],
                        default_root_dir=tmp_path)
    trainer.fit(task, DataLoader([batch] * 4, batch_size=None))
    assert int(task.steps) == steps  # stopped by max_steps
    return record.losses


def test_training_lowers_the_loss(tmp_path):
    wav = torch.from_numpy(np.stack([speechlike(0.5, seed=s) for s in range(4)]))
    losses = _train_on_one_batch(tmp_path, TINY, {"wav": wav})
    assert len(losses["disc"]) == 15  # the GAN ran from step 5
    assert np.mean(losses["mel"][-3:]) < 0.8 * np.mean(losses["mel"][:3])


def test_vocos_codec_with_distillation_lowers_both_losses(tmp_path):
    """Codebook 1's projection learns toward fixed teacher features while the audio improves;
    the recipe's settings: a bias-free encoder, and 3 steps without the quantizer first."""
    wav = torch.from_numpy(np.stack([speechlike(0.5, seed=s) for s in range(4)]))
    # a stand-in for a recognizer's frame features: the band energies of each 20 ms frame
    spectrum = torch.stft(wav, 320, 320, window=torch.hann_window(320), center=False, return_complex=True).abs()
    bands = torch.log1p(spectrum[:, :160].reshape(4, 8, 20, -1).mean(2))  # [B, 8, 25]
    teacher = bands - bands.mean((0, 2), keepdim=True)
    losses = _train_on_one_batch(tmp_path, dict(TINY_VOCOS, semantic_dim=8, encoder_bias=False),
                                 {"wav": wav, "semantic": teacher}, steps=30, loss={"quantizer_from": 3})
    assert losses["commit"][:3] == [0.0, 0.0, 0.0] and losses["commit"][3] > 0
    assert np.mean(losses["mel"][-3:]) < 0.8 * np.mean(losses["mel"][:3])
    assert np.mean(losses["semantic"][-3:]) < 0.95 * np.mean(losses["semantic"][:3])
