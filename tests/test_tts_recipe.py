"""The synth_en TTS recipe end to end on a tiny corpus and a tiny VALL-E, both conditionings."""
import shutil

import pytest
import torch

from narvox.tts.build import load_model
from narvox.tts.core import GenerateOptions
from narvox.tts.sampling import SamplingOptions
from tests.test_asr_recipe import ROOT, recipe_copy, run

TINY = ("model.d_model=32 model.n_heads=2 model.d_ff=64 model.phone_layers=1 model.layers=1 "
        "model.residual_layers=1 model.n_codebooks=2 model.align_dim=16 optim.max_steps=8 optim.warmup_steps=2 "
        "trainer.max_steps=8 loss.binarize_from=4 data.max_seconds=15 data.valid_utts=4 data.num_workers=0 "
        "trainer.val_check_interval=4 trainer.log_every_n_steps=2 curve_every_n_steps=4")


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="speech engines missing")
@pytest.mark.parametrize("kind, conditioning", [("valle", "aligned"), ("valle", "prefix"), ("masked", "aligned"),
                                                ("par", "aligned")])
def test_run_sh_trains_a_model_that_generates(tmp_path, kind, conditioning):
    recipe = recipe_copy(tmp_path).parent / "tts"
    exp = f"exp/{kind}_{conditioning}"
    # evaluation and export (stages 5-6, the slowest) run for one model: they treat all alike
    last = "6" if (kind, conditioning) == ("valle", "aligned") else "4"
    # the non-AR backends by name, as their users build them (--models picks config and exp dir)
    which = (["--models", kind] if kind in ("masked", "par")
             else ["--config", f"conf/{kind}_{conditioning}.yaml", "--exp", exp])
    run(["bash", "run.sh", "--stop-stage", last, "--size", "0.1", *which,
         "--train-args", TINY, "--eval-utts", "4",
         # the small corpus's held-out sets have one utterance per speaker: nothing to prompt them with
         "--valid-set", "train", "--test-sets", "train"], recipe)
    metrics = (recipe / exp / "logs/version_0/metrics.csv").read_text()
    for logged in (("train_ce_first", "val_acc_first", "val_ce_rest") if kind == "valle"
                   else ("train_ce_levels", "val_acc_levels")) + ("train_minutes",):
        assert logged in metrics
    assert ("train_forward_sum" in metrics) == (conditioning == "aligned")
    if last == "6":
        results = (recipe / exp / "RESULTS.md").read_text()
        for judge in ("ctc", "pocketsphinx"):
            assert f"| {judge} |" in results
        assert "Speaker similarity" in results and "Learning curve" in results
        from narvox.runtime.tts import OnnxTTS
        tts = OnnxTTS(recipe / exp / "onnx", num_threads=1)
        assert len(tts.voices) >= 10  # a voice per training speaker
    assert len(list((recipe / exp / "checkpoints").glob("curve-step*.ckpt"))) == 2
    phones = (recipe / "data/train/text_phones").read_text().splitlines()
    assert len(phones) == len((recipe / "data/train/text").read_text().splitlines())
    model, config, codec = load_model(recipe / exp / "model")
    assert (config["kind"], config["conditioning"], codec["codec"]) == (kind, conditioning, "narvox")
    out = model.generate([torch.tensor([5, 6, 7, 8])], [torch.randint(0, 1024, (8, 40))], [torch.tensor([5, 9])],
                         GenerateOptions(sampling=SamplingOptions(temperature=0), max_frames_per_phone=3, steps=(2, 1)))
    frames = out[0].shape[1]
    assert out[0].shape[0] == 2 and int(out[0].max()) < 1024
    assert 4 <= frames if conditioning == "aligned" else 1 <= frames <= 12  # a frame per phone | the cap


def test_pack_is_opt_in(tmp_path):
    """Stage 7 alone on a tiny exported bundle: the package's TTS is replaced only with --pack true."""
    from narvox.export.tts import export_tts
    from tests.test_tts_export import tiny_model_dir
    recipe = recipe_copy(tmp_path).parent / "tts"
    model_dir, _ = tiny_model_dir(tmp_path, "aligned")
    export_tts(model_dir, recipe / "exp/valle_aligned/onnx")
    package = tmp_path / "narvox/pretrained/tts/ar"  # the copy's, the default pack dir
    out = run(["bash", "run.sh", "--stage", "7"], recipe)
    assert "--pack true" in out.stdout and not package.exists()
    run(["bash", "run.sh", "--stage", "7", "--pack", "true"], recipe)
    assert (package / "narvox.json").is_file() and (package / "lm.onnx").is_file()


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "egs/synth_en/tts/conf").glob("*.yaml")))
def test_every_tts_config_builds_its_model_and_names_known_options(config):
    """A recipe config's model section builds (every field known), and its decoding defaults are
    a pseudo-AR model's (what stage 6 hands to `narvox export --decoding`)."""
    import yaml
    from narvox.tts.build import build_model
    c = yaml.safe_load((ROOT / "egs/synth_en/tts/conf" / config).read_text())
    model = build_model(c["model"], 60)
    assert set(c.get("decoding") or {}) <= ({"span", "refine_steps"} if c["model"]["kind"] == "par" else set())
    SamplingOptions(**(c.get("sampling") or {}))
    assert sum(p.numel() for p in model.parameters()) > 0
