"""VALL-E to ONNX: the bundle generates the same codes on ONNX Runtime as the PyTorch model (greedy
and seeded sampling, both conditionings), without torch in the runtime path."""
import numpy as np
import pytest
import torch

from narvox.runtime.codec import OnnxCodec
from narvox.runtime.tts import OnnxTTS
from narvox.text.tokens import RESERVED, PhoneTokenizer, TokenTable
from narvox.tts.build import build_model, save_model
from narvox.tts.core import GenerateOptions
from narvox.tts.sampling import SamplingOptions

GREEDY = GenerateOptions(sampling=SamplingOptions(temperature=0), max_frames_per_phone=3, steps=(3, 2))
SAMPLED = GenerateOptions(sampling=SamplingOptions(temperature=0.8, top_k=20, cfg_scale=1.5), seed=7,
                          max_frames_per_phone=3, steps=(3, 2))


def tiny_model_dir(tmp_path, conditioning, kind="valle"):
    torch.manual_seed(0)
    config = dict(kind=kind, conditioning=conditioning, codebook_size=1024, n_codebooks=3, d_model=32, n_heads=2,
                  d_ff=64, phone_layers=1, layers=2, residual_layers=1, align_dim=16, dropout=0.0)
    if kind == "par":  # steps on a window: the runtime must read the look-ahead from the bundle
        config["par_lookahead"] = 2
    symbols = ["a", "b", "d", "e", "i", "k", "l", "m", "n", "o", "s", "t", "u", "|", "ð", "ə", "ɪ"]
    tokenizer = PhoneTokenizer(TokenTable([*RESERVED, *symbols]))
    model = build_model(config, len(tokenizer))
    # a trained duration predictor gives a few frames per phone; a fresh one gives about 0
    torch.nn.init.constant_(model.text_to_frames.durations.out.bias, 1.5) if conditioning == "aligned" else None
    out = tmp_path / f"model_{kind}_{conditioning}"
    save_model(out, model.eval(), config, OnnxCodec("narvox").identity())
    tokenizer.save(out)
    return out, model.eval()


@pytest.mark.parametrize("kind", ["valle", "masked", "par"])
@pytest.mark.parametrize("conditioning", ["aligned", "prefix"])
def test_onnx_bundle_generates_the_codes_of_the_pytorch_model(tmp_path, conditioning, kind):
    from narvox.export.tts import export_tts
    model_dir, model = tiny_model_dir(tmp_path, conditioning, kind)
    bundle = export_tts(model_dir, tmp_path / "bundle", half_weights=False)
    tts = OnnxTTS(bundle, num_threads=1)
    g = torch.Generator().manual_seed(1)
    phones = [torch.randint(4, 21, (n,), generator=g) for n in (6, 9)]
    prompts = [torch.randint(0, 1024, (8, n), generator=g) for n in (12, 7)]
    prompt_phones = [torch.randint(4, 21, (n,), generator=g) for n in (3, 4)]
    for options in (GREEDY, SAMPLED):
        expected = model.generate(phones, prompts, prompt_phones, options)
        got = tts.generate([p.numpy() for p in phones], [p.numpy() for p in prompts],
                           [p.numpy() for p in prompt_phones], options)
        for e, o in zip(expected, got):
            assert np.array_equal(e.numpy(), o)
    audio = tts.decode(got)
    assert [len(a) for a in audio] == [c.shape[1] * tts.hop_length for c in got]


def test_half_weights_keep_the_logits(tmp_path):
    """The shipped float16 weights: the lm graph's logits stay close to float32's."""
    from narvox.export.tts import export_tts
    model_dir, model = tiny_model_dir(tmp_path, "prefix")
    full, half = (OnnxTTS(export_tts(model_dir, tmp_path / name, half_weights=h), num_threads=1)
                  for name, h in (("full", False), ("half", True)))
    phones, prompts = [np.array([5, 6, 7, 8])], [np.random.default_rng(0).integers(0, 1024, (8, 10))]
    f = full.graphs.encode(np.array([[5, 6, 7, 8]]), np.array([4]), prompts[0][None, :3], np.array([10]))[0]
    h = half.graphs.encode(np.array([[5, 6, 7, 8]]), np.array([4]), prompts[0][None, :3], np.array([10]))[0]
    assert np.abs(f - h).max() < 2e-2 * max(1.0, np.abs(f).max())
    assert full.generate(phones, prompts, [np.array([5])], GREEDY)[0].shape[0] == 3


def test_unknown_voice_lists_the_voices(tmp_path):
    from narvox.errors import NarvoxError
    from narvox.export.tts import export_tts
    model_dir, _ = tiny_model_dir(tmp_path, "aligned")
    tts = OnnxTTS(export_tts(model_dir, tmp_path / "bundle"), num_threads=1)
    with pytest.raises(NarvoxError, match="no voice 'nobody'"):
        tts.voice("nobody")


def test_a_pseudo_ar_bundle_carries_its_decoding_defaults(tmp_path):
    """`decoding` (the recipe's choice) sets the par bundle's span and refinement passes, which
    narvox.TTS uses unless told otherwise; other backends refuse them."""
    from narvox.export.tts import export_tts
    from narvox.tts.api import TTS
    model_dir, _ = tiny_model_dir(tmp_path, "aligned", kind="par")
    plain = OnnxTTS(export_tts(model_dir, tmp_path / "plain"), num_threads=1)
    assert (plain.span, plain.refine_steps, plain.graphs.lookahead) == (0.1, 7, 2)
    chosen = export_tts(model_dir, tmp_path / "chosen", decoding={"span": 0.25, "refine_steps": 2})
    tts = TTS.from_pretrained(chosen, num_threads=1)
    assert (tts.backend.span, tts.backend.refine_steps) == (0.25, 2)
    prompt = (np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000)
    options = tts._plan(["Hello."], None, prompt, "hi", None, 1.0, 0, None, None, None, {})[2]
    assert (options.span, options.refine_steps) == (0.25, 2)
    options = tts._plan(["Hello."], None, prompt, "hi", None, 1.0, 0, None, 0.5, 0, {})[2]
    assert (options.span, options.refine_steps) == (0.5, 0)  # the caller's win
    masked_dir, _ = tiny_model_dir(tmp_path, "aligned", kind="masked")
    with pytest.raises(ValueError, match="pseudo-AR"):
        export_tts(masked_dir, tmp_path / "masked", decoding={"span": 0.2})
