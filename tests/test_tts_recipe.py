"""The synth_en TTS recipe end to end on a tiny corpus and a tiny VALL-E, both conditionings."""
import shutil

import pytest
import torch

from narvox.tts.build import load_model
from narvox.tts.core import GenerateOptions
from narvox.tts.sampling import SamplingOptions
from tests.test_asr_recipe import recipe_copy, run

TINY = ("model.d_model=32 model.n_heads=2 model.d_ff=64 model.phone_layers=1 model.layers=1 "
        "model.residual_layers=1 model.n_codebooks=2 model.align_dim=16 optim.max_steps=8 optim.warmup_steps=2 "
        "trainer.max_steps=8 loss.binarize_from=4 data.max_seconds=15 data.valid_utts=4 data.num_workers=0 "
        "trainer.val_check_interval=null trainer.check_val_every_n_epoch=1 trainer.log_every_n_steps=2")


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="speech engines missing")
@pytest.mark.parametrize("conditioning", ["aligned", "prefix"])
def test_run_sh_trains_a_model_that_generates(tmp_path, conditioning):
    recipe = recipe_copy(tmp_path).parent / "tts"
    exp = f"exp/valle_{conditioning}"
    run(["bash", "run.sh", "--size", "0.02", "--config", f"conf/valle_{conditioning}.yaml", "--exp", exp,
         "--train-args", TINY], recipe)
    metrics = (recipe / exp / "logs/version_0/metrics.csv").read_text()
    for logged in ("train_ce_first", "val_acc_first", "val_ce_rest", "train_minutes"):
        assert logged in metrics
    assert ("train_forward_sum" in metrics) == (conditioning == "aligned")
    phones = (recipe / "data/train/text_phones").read_text().splitlines()
    assert len(phones) == len((recipe / "data/train/text").read_text().splitlines())
    model, config, codec = load_model(recipe / exp / "model")
    assert config["conditioning"] == conditioning and codec["codec"] == "narvox"
    out = model.generate([torch.tensor([5, 6, 7, 8])], [torch.randint(0, 1024, (8, 40))], [torch.tensor([5, 9])],
                         GenerateOptions(sampling=SamplingOptions(temperature=0), max_frames_per_phone=3))
    assert out[0].shape[0] == 2 and 1 <= out[0].shape[1] <= 12 and int(out[0].max()) < 1024
