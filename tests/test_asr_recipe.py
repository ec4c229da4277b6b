"""The synth_en ASR recipe end to end on a tiny corpus and tiny models, and DDP on CPU."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ("model.encoder.d_model=32 model.encoder.n_heads=2 model.encoder.d_ff=64 "
        "model.encoder.n_layers=1 model.encoder.subsampling_channels=8 model.decoder.d_model=32 "
        "model.decoder.n_heads=2 model.decoder.d_ff=64 model.decoder.n_layers=1 "
        "trainer.max_epochs=2 data.max_seconds=30 data.num_workers=0 optim.warmup_steps=5")

needs_engines = pytest.mark.skipif(not shutil.which("espeak-ng"), reason="speech engines missing")


def recipe_copy(tmp_path: Path) -> Path:
    """The recipe in a scratch tree, so the test never touches egs/synth_en/asr's own outputs."""
    egs = tmp_path / "egs"
    shutil.copytree(ROOT / "egs/utils", egs / "utils")
    shutil.copytree(ROOT / "tools", tmp_path / "tools")
    shutil.copytree(ROOT / "egs/synth_en", egs / "synth_en", symlinks=True,
                    ignore=shutil.ignore_patterns("corpus", "data", "dump", "exp"))
    return egs / "synth_en/asr"


def run(cmd: list[str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    """Runs cmd, asserting that it succeeds (ok) or fails."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert (out.returncode == 0) == ok, out.stdout[-3000:] + out.stderr[-3000:]
    return out


def test_pack_is_opt_in(tmp_path):
    """Stage 9 alone on fake bundles: the package's models are replaced only with --pack true."""
    recipe = recipe_copy(tmp_path)
    for m, name in (("ctc_attention", "ctc"), ("ctc_attention", "attention"), ("paraformer", "paraformer")):
        (recipe / f"exp/{m}/onnx/{name}").mkdir(parents=True)
        (recipe / f"exp/{m}/onnx/{name}/model.onnx").write_text(f"new {name}")
    package = tmp_path / "narvox/pretrained/asr"  # the copy's narvox/pretrained/asr, the default pack dir
    (package / "ctc").mkdir(parents=True)
    (package / "ctc/model.onnx").write_text("shipped ctc")
    out = run(["bash", "run.sh", "--stage", "9"], recipe)
    assert "--pack true" in out.stdout
    assert sorted(p.relative_to(package).as_posix() for p in package.rglob("*")) == ["ctc", "ctc/model.onnx"]
    assert (package / "ctc/model.onnx").read_text() == "shipped ctc"
    run(["bash", "run.sh", "--stage", "9", "--pack", "true"], recipe)
    for name in ("ctc", "attention", "paraformer"):
        assert (package / name / "model.onnx").read_text() == f"new {name}"


def test_stage_without_its_inputs_says_what_to_run(tmp_path):
    """`--stage 4` on a fresh clone fails at once, in one line, instead of deep in training."""
    out = run(["bash", "run.sh", "--stage", "4"], recipe_copy(tmp_path), ok=False)
    assert out.stderr.strip() == ("stage 4 needs dump/kaldi/train (run stages 0-3 first: "
                                  "./run.sh --stop-stage 3 ...)")


@needs_engines
def test_run_sh_all_stages(tmp_path):
    recipe = recipe_copy(tmp_path)
    run(["bash", "run.sh", "--size", "0.03", "--nbpe", "64", "--train-args", TINY,
         "--pack", "true", "--pack-dir", str(tmp_path / "pretrained")], recipe)
    for m in ("ctc_attention", "paraformer"):
        log = (recipe / f"exp/{m}/logs/version_0/metrics.csv").read_text().splitlines()
        assert len(log) > 2
        assert (recipe / f"exp/{m}/final/model.pt").is_file()
    results = (recipe / "exp/RESULTS.md").read_text()
    assert results.count("| test_seen |") == 6 and results.count("| test_unseen_voice |") == 6
    r = json.loads((recipe / "exp/paraformer/decode_test_seen_greedy/result.json").read_text())
    assert r["utterances"] > 0 and r["failed"] == []
    for bundle in ("ctc_attention/onnx/ctc", "ctc_attention/onnx/attention", "paraformer/onnx/paraformer"):
        assert (recipe / "exp" / bundle / "narvox.json").is_file()
    for name in ("ctc", "paraformer"):
        assert (tmp_path / "pretrained" / name / "model.onnx").is_file()
    # stages can be re-run alone
    run(["bash", "run.sh", "--size", "0.03", "--stage", "7", "--stop-stage", "7"], recipe)


def test_ddp_two_processes_on_cpu(tmp_path, tiny_dumps):
    train, valid, lang = tiny_dumps
    cfg = ROOT / "egs/synth_en/asr/conf/ctc_attention.yaml"
    exp = tmp_path / "exp"
    run([sys.executable, "-m", "narvox.recipes.train", "--task", "asr", "--config", str(cfg),
         "--exp-dir", str(exp), "--train", str(train), "--valid", str(valid), "--lang", str(lang),
         "--set", *TINY.split(), "trainer.devices=2", "trainer.strategy=ddp", "trainer.max_epochs=1"],
        tmp_path)
    assert (exp / "checkpoints/last.ckpt").is_file()


def test_training_resumes_from_last_checkpoint(tmp_path, tiny_dumps):
    """A run stopped after one epoch (as a kill would leave it) continues from last.ckpt."""
    train, valid, lang = tiny_dumps
    cfg = ROOT / "egs/synth_en/asr/conf/ctc_attention.yaml"
    exp = tmp_path / "exp"
    base = [sys.executable, "-m", "narvox.recipes.train", "--task", "asr", "--config", str(cfg),
            "--exp-dir", str(exp), "--train", str(train), "--valid", str(valid), "--lang", str(lang),
            "--set", *TINY.split()]
    run(base + ["trainer.max_epochs=1"], tmp_path)
    import torch
    first = torch.load(exp / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    out = run(base + ["trainer.max_epochs=2"], tmp_path)
    second = torch.load(exp / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert "Restoring states from the checkpoint" in out.stdout + out.stderr
    assert second["epoch"] == first["epoch"] + 1 and second["global_step"] > first["global_step"]
