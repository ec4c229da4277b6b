"""The independent TTS judges (narvox.eval.tts) on speech from Debian's engines."""
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from narvox.data.synth_en import TRAIN_VOICES, Voice
from narvox.errors import AudioError
from narvox.eval import tts
from narvox.eval.wer import error_rates

ESPEAK_F3 = next(v for v in TRAIN_VOICES if v.name == "en-us+f3")  # voices the corpus uses
FLITE_AWB = Voice("flite", "awb")
COFFEE = "I would like a cup of coffee."
WEATHER = "The weather is lovely today and the birds are singing."


def say(voice: Voice, text: str, tmp_path) -> tuple[np.ndarray, int]:
    """(audio, native sample rate) of `text` spoken by one of the corpus's engines."""
    tool = {"espeak": "espeak-ng", "flite": "flite"}[voice.engine]
    if not shutil.which(tool):
        pytest.skip(f"{tool} missing")
    txt, wav = tmp_path / f"{voice.speaker}-{len(text)}.txt", tmp_path / f"{voice.speaker}-{len(text)}.wav"
    txt.write_text(text)
    subprocess.run(voice.command(txt, wav), check=True, capture_output=True)
    audio, sr = sf.read(wav, dtype="float32")
    return audio, sr


@pytest.fixture(scope="module")
def sphinx():
    pytest.importorskip("pocketsphinx")
    return tts.PocketSphinxJudge()


@pytest.fixture(scope="module")
def encoder():
    pytest.importorskip("resemblyzer")
    return tts.SpeakerSimilarity(num_threads=1)


def test_import_loads_no_judge():
    code = ("import sys, narvox.eval.tts; "
            "print(sorted(m for m in ('torch', 'pocketsphinx', 'resemblyzer', 'librosa') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pocketsphinx_hears_espeak(sphinx, tmp_path):
    audio, sr = say(ESPEAK_F3, COFFEE, tmp_path)
    assert sr != tts.SAMPLE_RATE  # espeak-ng writes 22.05 kHz: the judge resamples
    [hyp] = sphinx.transcribe([(audio, sr)])
    assert hyp == hyp.lower() and set(hyp.split()) & {"would", "like", "cup", "coffee"}, hyp
    assert tts.judge_intelligibility([COFFEE], [hyp]).wer < 1.0


def test_pocketsphinx_silence(sphinx):
    rng = np.random.default_rng(0)
    quiet = (1e-4 * rng.standard_normal(tts.SAMPLE_RATE // 2)).astype(np.float32)
    digital, hiss = sphinx.transcribe([(np.zeros(tts.SAMPLE_RATE, np.float32), tts.SAMPLE_RATE),
                                       (quiet, tts.SAMPLE_RATE)])
    assert digital == "" and len(hiss.split()) <= 1, (digital, hiss)


def test_pocketsphinx_bad_audio_is_named(sphinx):
    bad = np.full(1600, np.nan, np.float32)
    with pytest.raises(AudioError, match="utterance 1: audio holds NaN"):
        sphinx.transcribe([(np.zeros(1600, np.float32), 16000), (bad, 16000)])


def test_judge_intelligibility_is_the_asr_scoring():
    assert tts.judge_intelligibility is error_rates


def test_same_voice_is_more_similar_than_another_voice(encoder, tmp_path):
    f3_coffee, sr = say(ESPEAK_F3, COFFEE, tmp_path)
    f3_weather, sr_w = say(ESPEAK_F3, WEATHER, tmp_path)
    awb_weather, sr_awb = say(FLITE_AWB, WEATHER, tmp_path)
    emb = encoder.embed(f3_coffee, sr)
    assert emb.shape == (256,) and np.isclose(np.linalg.norm(emb), 1.0, atol=1e-4)
    same = encoder.similarity(f3_coffee, sr, f3_weather, sr_w)
    other = encoder.similarity(f3_coffee, sr, awb_weather, sr_awb)
    assert same > other + 0.1, (same, other)  # measured: 0.82 vs 0.51


def test_similarity_refuses_silence(encoder):
    with pytest.raises(AudioError, match="no speech found"):
        encoder.embed(np.zeros(tts.SAMPLE_RATE, np.float32), tts.SAMPLE_RATE)
