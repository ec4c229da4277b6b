"""The runtime never imports torch, by construction: every bundle kind's runtime and `narvox
transcribe` run in a subprocess where importing any `narvox[train]` dependency fails (and is
reported even when the importer would swallow the ImportError)."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from narvox import registry
from narvox.bundle import shipped
from tests.test_asr_models import bundles  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
# the modules of narvox[train]: what `pip install narvox[cpu]` leaves out
TRAIN_ONLY = sorted(re.split(r"[<>=!~;\[ ]", req)[0].replace("-", "_") for req in
                    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["train"])
BLOCKED = "BLOCKED IMPORT"

PRELUDE = f"""
import sys
TRAIN_ONLY = {TRAIN_ONLY!r}

class TrainingOnly:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in TRAIN_ONLY:
            print("{BLOCKED}", name, file=sys.stderr)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, TrainingOnly())
assert not [m for m in sys.modules if m.partition(".")[0] in TRAIN_ONLY]
import numpy as np
"""
EPILOGUE = """
assert not [m for m in sys.modules if m.partition(".")[0] in TRAIN_ONLY]
"""
SPEECH = ROOT / "examples" / "speech.flac"

RUNS = {
    "asr": """
import narvox
from narvox.runtime import OnnxASR, load_bundle
runtime = load_bundle(BUNDLE)
assert isinstance(runtime, OnnxASR)
from narvox.audio import read_audio
audio, _ = read_audio(SPEECH, sample_rate=runtime.frontend.sample_rate)
for method in registry.bundle_kind(runtime.kind).methods:
    (ids, times), = runtime.recognize([runtime.frontend(audio)], method)
    assert len(ids) == len(times)
    print(method, runtime.text(ids))
print(narvox.ASR.from_pretrained(BUNDLE).transcribe(SPEECH).text)
""",
    "codec": """
from narvox.runtime import OnnxCodec, load_bundle
codec = load_bundle(BUNDLE, n_codebooks=4)
assert isinstance(codec, OnnxCodec)
from narvox.audio import read_audio
wav, _ = read_audio(SPEECH, sample_rate=codec.sample_rate)
codes = codec.encode(wav)
assert codes.shape[:2] == (1, 4) and codec.decode(codes).shape[1] >= len(wav)
""",
    "tts": """
from narvox.runtime import load_bundle
from narvox.runtime.tts import OnnxTTS
from narvox.tts.decoding import GenerateOptions
from narvox.tts.sampling import SamplingOptions
tts = load_bundle(BUNDLE)
assert isinstance(tts, OnnxTTS)
phones = tts.phones("hello world")
prompt = np.random.default_rng(0).integers(0, tts.codebook_size, (8, 50))
options = GenerateOptions(sampling=SamplingOptions(temperature=0.9, top_k=10), seed=0, max_frames_per_phone=2,
                          steps=(2, 1))
codes = tts.generate([phones], [prompt], [phones[:3]], options)
audio = tts.decode(codes)
assert len(audio[0]) == codes[0].shape[1] * tts.hop_length > 0
if tts.streams:  # pseudo-AR: span by span, and the audio of what is final
    from narvox.runtime.codec import StreamingDecoder
    decoder = StreamingDecoder(tts.codec)
    for codes, final in tts.stream([phones], [prompt], [phones[:3]], options):
        decoder.push(codes[0, :, :final[0]], final=final[0] == codes.shape[2])
    assert decoder.emitted == codes.shape[2]
""",
}


def run_without_training_deps(code: str, **values) -> subprocess.CompletedProcess:
    script = PRELUDE + "".join(f"{k} = {str(v)!r}\n" for k, v in values.items()) + code + EPILOGUE
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)


def _check(out: subprocess.CompletedProcess) -> None:
    assert BLOCKED not in out.stderr, out.stderr
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.fixture(scope="module")
def every_kind(bundles, tmp_path_factory):  # noqa: F811
    """A bundle of every bundle kind: the test exports of the ASR kinds and of tiny TTS models,
    the shipped codec."""
    from narvox.export.tts import export_tts
    from tests.test_tts_export import tiny_model_dir
    found = {kind: bundle for kind, (bundle, _) in bundles.items()}
    found["codec"] = shipped("codec")["narvox"]
    tmp = tmp_path_factory.mktemp("tts")
    for kind in ("valle", "masked", "par"):
        for conditioning in ("aligned", "prefix"):
            model_dir, _ = tiny_model_dir(tmp, conditioning, kind)
            found[f"{kind}_{conditioning}"] = export_tts(model_dir, tmp / f"{kind}_{conditioning}")
    return found


def test_every_bundle_kind_is_covered(every_kind):
    assert set(every_kind) == set(registry.BUNDLE_KINDS)


@pytest.mark.parametrize("kind", sorted(registry.BUNDLE_KINDS))
def test_every_runtime_runs_without_torch(every_kind, kind):
    family = registry.bundle_kind(kind).family
    _check(run_without_training_deps("from narvox import registry\n" + RUNS[family],
                                     BUNDLE=every_kind[kind], SPEECH=SPEECH))


@pytest.mark.parametrize("name", sorted(shipped("asr")) + sorted(shipped("codec")) + sorted(shipped("tts")))
def test_shipped_bundles_run_without_torch(name):
    family = next(f for f in registry.RUNTIMES if name in shipped(f))
    _check(run_without_training_deps("from narvox import registry\n" + RUNS[family], BUNDLE=name, SPEECH=SPEECH))


def test_narvox_transcribe_runs_without_torch():
    out = run_without_training_deps("from narvox.cli import main\nassert main(ARGS.split()) == 0\n",
                                    ARGS=f"transcribe {SPEECH} --model paraformer --format json")
    _check(out)
    assert '"error": null' in out.stdout


def test_a_command_that_needs_torch_says_what_to_install(tmp_path):
    out = run_without_training_deps("from narvox.cli import main\nsys.exit(main(ARGS.split()))\n",
                                    ARGS=f"export {tmp_path} --out {tmp_path / 'out'}")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    message = [line for line in out.stderr.splitlines() if not line.startswith(BLOCKED)]
    assert message == ["narvox export: needs torch, which this install lacks: pip install 'narvox[train]'"]
