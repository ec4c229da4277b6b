"""The `narvox` command: valid SRT, one JSON line per input, one-line errors with exit 2 for bad
usage and 1 for failed inputs."""
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import srt

from narvox.asr.api import Transcript
from narvox.asr.subtitles import srt_cues, to_srt
from narvox.text.tokens import tokens_to_text
from tests.test_asr_api import speechlike
from tests.test_asr_models import bundles  # noqa: F401  (fixture)


def narvox(*args):
    return subprocess.run([sys.executable, "-m", "narvox", *map(str, args)], capture_output=True, text=True)


def check_srt(text: str, duration: float) -> list:
    """The parsed cues, after checking what a player relies on."""
    subs = list(srt.parse(text))
    assert [s.index for s in subs] == list(range(1, len(subs) + 1))
    for s in subs:
        assert 0 <= s.start.total_seconds() < s.end.total_seconds() <= duration and s.content
    for a, b in zip(subs, subs[1:]):
        assert a.end <= b.start
    return subs


# "▁" word starts: a pause after "again", a 10 s run of speech cut at 7 s, a word at the audio's very end
SPACE_FORM = (["▁he", "llo", "▁wor", "ld", "▁again", *[w for i in range(40) for w in (f"▁w{i}", "x")], "▁end"],
              [0.1, 0.3, 0.5, 0.7, 0.9, *[2.0 + 0.125 * i for i in range(80)], 13.0], 13.0,
              ["hello world again", " ".join(f"w{i}x" for i in range(28)),
               " ".join(f"w{i}x" for i in range(28, 40)), "end"])
# "@@" continuations: "ment" comes 1.5 s after "ip@@" but is the same word
AT_FORM = (["sh@@", "ip@@", "ment", "is", "here", "now"], [0.2, 0.4, 1.9, 2.1, 9.0, 9.3], 9.6,
           ["shipment is", "here now"])


@pytest.mark.parametrize("tokens,times,duration,texts", [SPACE_FORM, AT_FORM])
def test_srt_cues_are_phrases_within_the_audio(tokens, times, duration, texts):
    t = Transcript(source="a.wav", text=tokens_to_text(tokens), tokens=tokens, timestamps=times, duration=duration)
    check_srt(to_srt(t), duration)
    cues = srt_cues(t)
    assert [text for *_, text in cues] == texts
    assert all(end - start <= 7.0 + 1.0 for start, end, _ in cues)
    assert cues[-1][1] == duration


def test_srt_of_nothing_heard_is_empty():
    assert to_srt(Transcript(source="silence.wav", duration=3.0)) == ""


def test_cli_srt_on_a_bundle(bundles, tmp_path):  # noqa: F811
    wavs = [tmp_path / "a.wav", tmp_path / "b.wav"]
    pause = np.zeros(int(1.5 * 16000), np.float32)
    sf.write(wavs[0], np.concatenate([speechlike(3.0, seed=0), pause, speechlike(3.0, seed=1)]), 16000)
    sf.write(wavs[1], speechlike(2.0), 16000)
    model = ["--model", bundles["ctc"][0], "--format", "srt"]
    one = narvox("transcribe", *model, wavs[0])
    assert one.returncode == 0, one.stderr
    assert len(check_srt(one.stdout, 7.5)) >= 2  # a cue on each side of the pause
    several = narvox("transcribe", *model, *wavs)
    assert several.returncode == 2 and several.stderr.count("\n") == 1 and "--output-dir" in several.stderr
    to_dir = narvox("transcribe", *model, "--output-dir", tmp_path / "subs", *wavs)
    assert to_dir.returncode == 0, to_dir.stderr
    assert to_dir.stdout.split() == [str(tmp_path / "subs" / "a.srt"), str(tmp_path / "subs" / "b.srt")]
    assert (tmp_path / "subs" / "a.srt").read_text() == one.stdout
    check_srt((tmp_path / "subs" / "b.srt").read_text(), 2.0)


def test_cli_json_has_one_line_per_input_and_each_error_once(bundles, tmp_path):  # noqa: F811
    good = tmp_path / "good.wav"
    sf.write(good, speechlike(1.0), 16000)
    missing = tmp_path / "missing.wav"
    out = narvox("transcribe", "--model", bundles["ctc"][0], "--format", "json", good, missing, good)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["source"] for r in rows] == [str(good), str(missing), str(good)]
    assert [r["error"] for r in rows] == [None, f"{missing}: no such file", None]
    assert out.stderr.count("missing.wav") == 1


@pytest.mark.parametrize("case", ["export missing dir", "export dir without model", "data fix missing dir",
                                  "batch size 0", "unknown model", "missing audio file"])
def test_cli_errors_are_one_line_with_exit_2_for_usage_and_1_for_inputs(case, bundles, tmp_path):  # noqa: F811
    wav = tmp_path / "a.wav"
    sf.write(wav, speechlike(1.0), 16000)
    ctc = bundles["ctc"][0]
    args, status, named = {
        "export missing dir": (["export", tmp_path / "nope", "--out", tmp_path / "out"], 2, "nope: no such directory"),
        "export dir without model": (["export", tmp_path, "--out", tmp_path / "out"], 2,
                                     f"{tmp_path}: no trained model (model.pt) here; train one first"),
        "data fix missing dir": (["data", "fix", tmp_path / "nope"], 2, "nope: no such directory"),
        "batch size 0": (["transcribe", "--model", ctc, "--batch-size", "0", wav], 2, "--batch-size"),
        "unknown model": (["transcribe", "--model", "no-such-model", wav], 2, "'no-such-model' is neither"),
        "missing audio file": (["transcribe", "--model", ctc, tmp_path / "gone.wav"], 1, "gone.wav: no such file"),
    }[case]
    out = narvox(*args)
    assert out.returncode == status and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.count("\n") == 1 and named in out.stderr, out.stderr
