"""The synth_en codec recipe end to end on a tiny corpus and a tiny codec."""
import json
import shutil

import pytest

from narvox.codecs.dump import CodesFile
from tests.test_asr_recipe import recipe_copy, run

TINY = ("model.n_filters=4 model.dimension=16 model.n_codebooks=4 model.codebook_size=32 "
        "model.kmeans_iters=2 model.decoder_dim=16 model.decoder_hidden=32 model.decoder_layers=2 optim.max_steps=12 optim.warmup_steps=2 loss.adversarial_from=6 "
        "data.batch_size=4 data.segment_seconds=0.5 data.valid_utts=4 data.num_workers=0 "
        "trainer.val_check_interval=null trainer.check_val_every_n_epoch=1")


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="speech engines missing")
def test_run_sh_all_stages(tmp_path):
    recipe = recipe_copy(tmp_path).parent / "codec"
    pack = tmp_path / "pretrained_codec"
    run(["bash", "run.sh", "--size", "0.02", "--train-args", TINY, "--eval-utts", "4",
         "--pack", "true", "--pack-dir", str(pack)], recipe)
    metrics = (recipe / "exp/codec/logs/version_0/metrics.csv").read_text()
    for logged in ("train_adversarial", "train_semantic", "val_stoi", "val_semantic", "train_minutes"):
        assert logged in metrics
    assert (recipe / "exp/teacher_ctc/model.pt").is_file()  # recovered from the shipped CTC bundle
    assert len((recipe / "exp/codec/model/averaged_from.txt").read_text().split()) == 1  # the best by STOI
    model = recipe / "exp/codec/model"
    for name in ("codec.yaml", "model.pt", "encoder.onnx", "decoder.onnx", "narvox.json"):
        assert (model / name).is_file() and (pack / name).is_file()
    result = json.loads((recipe / "exp/codec/eval_test_unseen_voice.json").read_text())
    assert [r["codebooks"] for r in result["rows"]] == [1, 2, 3, 4]
    assert all(0 <= r["stoi"] <= 1 and "wer_delta" in r for r in result["rows"])
    assert "| 4 | 1 |" in (recipe / "exp/codec/RESULTS.md").read_text()  # 4 x log2(32) bits x 50 /s = 1 kbps
    identity = json.loads((model / "narvox.json").read_text())
    for s in ("train", "dev", "test_seen", "test_unseen_voice"):
        codes = CodesFile(recipe / f"data/{s}/codes_narvox.bin")
        codes.check_codec({k: identity[k] for k in ("codec", "weights", "sample_rate", "frame_rate",
                                                    "codebook_size")})
        assert len(codes) == len((recipe / f"data/{s}/utt2spk").read_text().splitlines())


def test_pack_is_opt_in(tmp_path):
    """Stage 6 alone on a fake codec: the package's codec is replaced only with --pack true."""
    recipe = recipe_copy(tmp_path).parent / "codec"
    files = ("codec.yaml", "model.pt", "encoder.onnx", "decoder.onnx", "narvox.json")
    (recipe / "exp/codec/model").mkdir(parents=True)
    for name in files:
        (recipe / "exp/codec/model" / name).write_text(f"new {name}")
    package = tmp_path / "narvox/pretrained/codec/narvox"  # the copy's, the default pack dir
    out = run(["bash", "run.sh", "--stage", "6"], recipe)
    assert "--pack true" in out.stdout and not package.exists()
    run(["bash", "run.sh", "--stage", "6", "--pack", "true"], recipe)
    assert all((package / name).read_text() == f"new {name}" for name in files)


def test_ddp_two_processes_and_resume_on_cpu(tmp_path, tiny_corpus):
    """Two DDP processes (gloo) train through the GAN phase, with codebooks initialised, expired
    and updated on both ranks alike; a second run resumes from last.ckpt."""
    import sys
    import torch
    from tests.test_asr_recipe import ROOT
    exp = tmp_path / "exp"
    base = [sys.executable, "-m", "narvox.recipes.train", "--task", "codec", "--config",
            str(ROOT / "egs/synth_en/codec/conf/codec.yaml"), "--exp-dir", str(exp),
            "--train", str(tiny_corpus / "train"), "--valid", str(tiny_corpus / "dev"), "--set", *TINY.split(),
            "trainer.devices=2", "trainer.strategy=ddp_find_unused_parameters_true",
            # EnCodec's own threshold: on batches this small, codes expire at every step, and each
            # expiry is a broadcast that every rank has to join
            "model.dead_code_threshold=2"]
    run(base + ["optim.max_steps=8"], tmp_path)
    first = torch.load(exp / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    out = run(base + ["optim.max_steps=16"], tmp_path)
    assert "Restoring states from the checkpoint" in out.stdout + out.stderr
    second = torch.load(exp / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    # last.ckpt holds the final weights under DDP too
    assert int(first["state_dict"]["steps"]) == 8 and int(second["state_dict"]["steps"]) == 16
