"""narvox.TTS and `narvox synthesize` on a tiny exported bundle (its speech is noise; what is
tested is the API: batching, voices, prompts, durations, errors)."""
import logging

import numpy as np
import pytest

from narvox.cli import main
from narvox.errors import AudioError, NarvoxError, TextError
from narvox.tts.api import TTS
from tests.test_tts_export import tiny_model_dir


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from narvox.export.tts import export_tts
    tmp = tmp_path_factory.mktemp("tts_api")
    model_dir, _ = tiny_model_dir(tmp, "aligned")
    out = export_tts(model_dir, tmp / "bundle")
    rng = np.random.default_rng(0)
    np.savez(out / "voices.npz", names=np.array(["alice", "bob"]),
             codes_0=rng.integers(0, 1024, (3, 150)).astype(np.int16), phones_0=np.zeros(0, dtype=np.int64),
             codes_1=rng.integers(0, 1024, (3, 150)).astype(np.int16), phones_1=np.zeros(0, dtype=np.int64))
    return out, model_dir


def speech_like(seconds: float, sr: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_synthesize_texts_in_voices_and_prompts(bundle, tmp_path):
    tts = TTS.from_pretrained(bundle[0], num_threads=1)
    assert tts.voices == ["alice", "bob"]
    one = tts.synthesize("Hello world. How are you?", seed=0)
    again = tts.synthesize("Hello world. How are you?", voice="alice", seed=0)
    assert one.sample_rate == 16000 and one.audio.dtype == np.float32 and len(one.audio) > 0
    assert np.array_equal(one.audio, again.audio)  # the default voice is the first; a seed repeats
    both = tts.synthesize(["Hello world.", "Good morning, Bob."], voice="bob", seed=1)
    assert [s.text for s in both] == ["Hello world.", "Good morning, Bob."]
    timed = tts.synthesize("Hello world.", duration=2.0, seed=0)
    assert abs(timed.duration - 2.0) < 0.05
    import soundfile as sf
    sf.write(tmp_path / "prompt.wav", speech_like(2.0), 16000)
    assert len(tts.synthesize("Hello.", prompt=tmp_path / "prompt.wav", seed=0).audio) > 0
    assert len(tts.synthesize("Hello.", prompt=(speech_like(2.0, 8000), 8000), seed=0).audio) > 0


def test_bad_input_is_named(bundle, tmp_path, caplog):
    tts = TTS.from_pretrained(bundle[0], num_threads=1)
    with pytest.raises(TextError, match="text 1 is empty"):
        tts.synthesize(["Hello.", "  "])
    with pytest.raises(TextError, match="nothing to pronounce"):
        tts.synthesize("...")
    with pytest.raises(NarvoxError, match=r"unknown voice 'carol' \(voices: alice, bob\)"):
        tts.synthesize("Hello.", voice="carol")
    with pytest.raises(AudioError, match="0.50 s; give at least 1 s"):
        tts.synthesize("Hello.", prompt=speech_like(0.5))
    with pytest.raises(AudioError, match="silent"):
        tts.synthesize("Hello.", prompt=np.zeros(32000, dtype=np.float32))
    with pytest.raises(AudioError, match="missing.wav"):
        tts.synthesize("Hello.", prompt=tmp_path / "missing.wav")
    with pytest.raises(NarvoxError, match="generation options"):
        tts.synthesize("Hello.", temprature=0.5)
    with pytest.raises(NarvoxError, match="steps must be >= 1"):
        tts.synthesize("Hello.", steps=(4, 0))
    with caplog.at_level(logging.WARNING):
        tts.synthesize("Hello.", prompt=speech_like(12.0), seed=0)
    assert "using its first 10 s" in caplog.text


def test_model_directory_runs_on_pytorch(bundle):
    tts = TTS.from_pretrained(bundle[1], num_threads=1)
    assert tts.voices == []
    with pytest.raises(NarvoxError, match="ships no voices"):
        tts.synthesize("Hello.")
    assert len(tts.synthesize("Hello.", prompt=speech_like(2.0), seed=0).audio) > 0


def test_cli_synthesize(bundle, tmp_path, capsys):
    out = tmp_path / "x.wav"
    assert main(["synthesize", "Hello world.", "-o", str(out), "--model", str(bundle[0]), "--seed", "0"]) == 0
    import soundfile as sf
    audio, sr = sf.read(out)
    assert sr == 16000 and len(audio) > 0
    assert main(["synthesize", "--list-voices", "--model", str(bundle[0])]) == 0
    assert capsys.readouterr().out.split()[-2:] == ["alice", "bob"]
    assert main(["synthesize", "Hello."]) == 2  # no -o
    assert main(["synthesize", "Hello.", "-o", str(out), "--model", str(tmp_path / "nope")]) == 2
    assert main(["synthesize", "Hello.", "-o", str(out), "--model", str(bundle[0]), "--voice", "carol"]) == 1


def test_par_bundle_takes_its_generation_options(tmp_path):
    """The pseudo-AR backend from the API and the CLI: passes per level, span, refinement."""
    from narvox.export.tts import export_tts
    model_dir, _ = tiny_model_dir(tmp_path, "aligned", kind="par")
    bundle = export_tts(model_dir, tmp_path / "bundle", voices_from=None)
    tts = TTS.from_pretrained(bundle, num_threads=1)
    quick = tts.synthesize("Hello world.", prompt=speech_like(2.0), seed=0, steps=(1, 1, 1), span=0.5, refine_steps=1)
    again = tts.synthesize("Hello world.", prompt=speech_like(2.0), seed=0, steps=(1, 1, 1), span=0.5, refine_steps=1)
    assert len(quick.audio) > 0 and np.array_equal(quick.audio, again.audio)
    import soundfile as sf
    sf.write(tmp_path / "prompt.wav", speech_like(2.0), 16000)
    out = tmp_path / "x.wav"
    assert main(["synthesize", "Hello world.", "-o", str(out), "--model", str(bundle), "--prompt",
                 str(tmp_path / "prompt.wav"), "--steps", "2", "1", "--span", "0.5", "--refine-steps", "2"]) == 0
    assert sf.info(out).frames > 0


def test_a_refiner_serves_the_pseudo_ar_backend_only(bundle, tmp_path):
    """PALLE's two models from the API: a masked model refines for the pseudo-AR one, on ONNX
    Runtime and on PyTorch alike; anything else is refused by name."""
    from narvox.export.tts import export_tts
    par_dir, _ = tiny_model_dir(tmp_path, "aligned", kind="par")
    masked_dir, _ = tiny_model_dir(tmp_path, "aligned", kind="masked")
    par, masked = export_tts(par_dir, tmp_path / "par"), export_tts(masked_dir, tmp_path / "masked")
    options = dict(prompt=speech_like(2.0), seed=0, steps=(1, 1), span=0.5, refine_steps=2)
    onnx = TTS.from_pretrained(par, num_threads=1, refiner=masked).synthesize("Hello world.", **options)
    torch = TTS.from_pretrained(par_dir, num_threads=1, refiner=masked_dir).synthesize("Hello world.", **options)
    assert len(onnx.audio) > 0 and len(onnx.audio) == len(torch.audio)
    import soundfile as sf
    sf.write(tmp_path / "prompt.wav", speech_like(2.0), 16000)
    assert main(["synthesize", "Hello world.", "-o", str(tmp_path / "x.wav"), "--model", str(par), "--refiner",
                 str(masked), "--prompt", str(tmp_path / "prompt.wav")]) == 0
    with pytest.raises(NarvoxError, match="only the pseudo-AR backend"):
        TTS.from_pretrained(masked, num_threads=1, refiner=par)
    with pytest.raises(NarvoxError, match="masked or pseudo-AR"):
        TTS.from_pretrained(par, num_threads=1, refiner=bundle[0])  # a VALL-E bundle


def test_synthesize_stream(bundle, tmp_path, capsys):
    """Pseudo-AR streams span by span, VALL-E sentence by sentence; bad input is refused at the
    call, before any chunk; the CLI writes the stream as it comes."""
    from narvox.export.tts import export_tts
    model_dir, _ = tiny_model_dir(tmp_path, "aligned", kind="par")
    par = TTS.from_pretrained(export_tts(model_dir, tmp_path / "par"), num_threads=1)
    chunks = list(par.synthesize_stream("Hello world. Good morning.", prompt=speech_like(2.0), duration=2.0, seed=0,
                                        span=0.25))
    assert len(chunks) > 4 and all(c.dtype == np.float32 for c in chunks)
    total = sum(len(c) for c in chunks) / par.sample_rate
    assert abs(total - (2.0 + 0.25)) < 0.05  # the duration, and the pause between the sentences
    with pytest.raises(TextError, match="nothing to pronounce"):
        par.synthesize_stream("...", prompt=speech_like(2.0))
    valle = TTS.from_pretrained(bundle[0], num_threads=1)
    assert len(list(valle.synthesize_stream("Hello world. Good morning.", seed=0))) == 3  # sentence, pause, sentence
    out = tmp_path / "stream.wav"
    assert main(["synthesize", "Hello world.", "-o", str(out), "--model", str(tmp_path / "par"), "--prompt",
                 str(tmp_path / "prompt.wav"), "--stream", "--seed", "0"]) == 1  # no such prompt yet
    import soundfile as sf
    sf.write(tmp_path / "prompt.wav", speech_like(2.0), 16000)
    assert main(["synthesize", "Hello world.", "-o", str(out), "--model", str(tmp_path / "par"), "--prompt",
                 str(tmp_path / "prompt.wav"), "--stream", "--seed", "0"]) == 0
    assert "first audio after" in capsys.readouterr().out and sf.info(out).frames > 0


def test_the_bundles_default_sampling_is_used_unless_overridden(tmp_path):
    from narvox.export.tts import export_tts
    from narvox.tts.sampling import SamplingOptions
    assert SamplingOptions.parse("cfg_scale=3 temperature=0.5") == {"cfg_scale": 3.0, "temperature": 0.5}
    for bad in (["cfg_scale"], ["temprature=1"], ["top_p=2"]):
        with pytest.raises(ValueError):
            SamplingOptions.parse(bad)
    model_dir, _ = tiny_model_dir(tmp_path, "aligned")
    tts = TTS.from_pretrained(export_tts(model_dir, tmp_path / "greedy", sampling={"temperature": 0.0}), num_threads=1)
    assert tts.backend.sampling == {"temperature": 0.0}
    prompt = speech_like(2.0)
    greedy = [tts.synthesize("Hello world.", prompt=prompt, seed=s).audio for s in (0, 1)]
    assert np.array_equal(*greedy)  # the bundle's greedy default: seeds change nothing
    sampled = [tts.synthesize("Hello world.", prompt=prompt, seed=s, temperature=1.0).audio for s in (0, 1)]
    assert not np.array_equal(*sampled)  # an option given overrides it
    assert main(["export", str(model_dir), "--out", str(tmp_path / "x"), "--sampling", "cfg_scale"]) == 2
