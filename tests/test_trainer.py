"""The one trainer (narvox.recipes.trainer) and the averager, for every task."""
import os
import signal

import pytest
import pytorch_lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from narvox.recipes.average import main as average_main
from narvox.recipes.train import load_config, train
from narvox.recipes.trainer import Task, fit
from tests.test_asr_recipe import ROOT, TINY as ASR_TINY
from tests.test_codec_recipe import TINY as CODEC_TINY


class Line(Task):
    """Fits y = 3x + 1: a task that takes many steps in no time."""
    kind = "line"

    def __init__(self, sigterm_at: int | None = None):
        super().__init__()
        self.net = torch.nn.Linear(1, 1)
        self.sigterm_at, self.steps_run = sigterm_at, 0

    def training_step(self, batch, batch_idx):
        self.steps_run += 1
        if self.global_step + 1 == self.sigterm_at:  # a kill arriving during that step
            os.kill(os.getpid(), signal.SIGTERM)
        x, y = batch
        return F.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)


class LineData(L.LightningDataModule):
    def _loader(self, shuffle: bool) -> DataLoader:
        x = torch.linspace(-1, 1, 64)[:, None]
        return DataLoader(TensorDataset(x, 3 * x + 1), batch_size=4, shuffle=shuffle)

    def train_dataloader(self):
        return self._loader(shuffle=True)

    def val_dataloader(self):
        return self._loader(shuffle=False)


def line_config(max_steps: int) -> dict:
    # 16 steps an epoch, validation every 5: the stops below fall between validations
    return {"trainer": {"max_steps": max_steps, "val_check_interval": 5, "accelerator": "cpu",
                        "log_every_n_steps": 1, "enable_progress_bar": False, "enable_model_summary": False},
            "average": {"n_best": 2}}


def assert_last_holds(exp, task: Line, step: int) -> None:
    last = torch.load(exp / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == step
    for k, v in task.state_dict().items():
        assert torch.equal(last["state_dict"][k], v), k


@pytest.mark.parametrize("stop", ["step_limit", "sigterm"])
def test_resume_after_a_stop_loses_no_steps(tmp_path, stop):
    """Stopped after N = 7 steps (a step limit, or SIGTERM as `kill` and schedulers send),
    last.ckpt holds those 7 steps' weights; a second run resumes there and runs exactly 7 more."""
    exp, n = tmp_path / "exp", 7
    L.seed_everything(0)
    first = Line(sigterm_at=n if stop == "sigterm" else None)
    if stop == "sigterm":
        with pytest.raises(SystemExit):  # Lightning's SIGTERMException
            fit(first, LineData(), line_config(100), exp)
    else:
        fit(first, LineData(), line_config(n), exp)
    assert first.steps_run == n
    assert_last_holds(exp, first, n)
    second = Line()
    fit(second, LineData(), line_config(2 * n), exp)
    assert second.steps_run == n
    assert_last_holds(exp, second, 2 * n)
    # the validations at steps 5 (first run) and 10 (second) wrote the top-2
    best = sorted(p.name.split("-")[0] for p in (exp / "checkpoints").glob("step*"))
    assert best == ["step0000005", "step0000010"]
    assert (exp / "logs/version_1/metrics.csv").is_file()  # the resumed run logs beside the first


def assert_mean_of(checkpoints, state: dict, tol: float) -> None:
    """state (a model's weights) is the mean of the checkpoints' (their task's `model.` ones)."""
    loaded = [torch.load(c, map_location="cpu", weights_only=False)["state_dict"] for c in checkpoints]
    for k, v in state.items():
        if v.is_floating_point():
            mean = sum(s[f"model.{k}"] for s in loaded) / len(loaded)
            assert torch.allclose(v.float(), mean, rtol=tol, atol=tol), k


def test_average_asr(tmp_path, tiny_dumps):
    from narvox.asr.build import load_model
    train_dir, valid_dir, lang = tiny_dumps
    exp, out = tmp_path / "exp", tmp_path / "final"
    config = load_config(ROOT / "egs/synth_en/asr/conf/ctc_attention.yaml",
                         ASR_TINY.split() + ["average.n_best=2", "trainer.max_epochs=3"])
    train("asr", config, exp, train=str(train_dir), valid=str(valid_dir), lang=str(lang))
    average_main(["--exp-dir", str(exp), "--out", str(out)])
    averaged = (out / "averaged_from.txt").read_text().split()
    assert len(averaged) == 2 and all("val_loss=" in name for name in averaged)
    model, _ = load_model(out)
    assert_mean_of([exp / "checkpoints" / name for name in averaged], model.state_dict(), tol=1e-5)
    for name in ("tokens.txt", "tokenizer.json", "bpe.model", "config.yaml"):
        assert (out / name).is_file()


def test_average_codec(tmp_path, make_data_dir):
    from narvox.codecs.narvox_codec import NarvoxCodec
    _, data = make_data_dir(n=3)
    exp = tmp_path / "exp"
    overrides = ["optim.max_steps=3", "average.n_best=2", "data.valid_seconds=0.5"]
    config = load_config(ROOT / "egs/synth_en/codec/conf/codec.yaml", CODEC_TINY.split() + overrides)
    train("codec", config, exp, train=str(data), valid=str(data))
    # the N best by validation mel loss, as a codec directory
    average_main(["--exp-dir", str(exp), "--out", str(tmp_path / "best")])
    averaged = (tmp_path / "best/averaged_from.txt").read_text().split()
    assert len(averaged) == 2
    shipped = torch.load(tmp_path / "best/model.pt", weights_only=True)  # in float16
    assert_mean_of([exp / "checkpoints" / name for name in averaged], shipped, tol=1e-3)
    NarvoxCodec.load(tmp_path / "best")
    # the recipe's packaging: last.ckpt alone, the final weights
    last = exp / "checkpoints/last.ckpt"
    average_main(["--checkpoints", str(last), "--out", str(tmp_path / "last")])
    assert int(torch.load(last, weights_only=False)["state_dict"]["steps"]) == 3
    assert_mean_of([last], torch.load(tmp_path / "last/model.pt", weights_only=True), tol=1e-3)


def test_validation_curve_joins_resumed_runs_and_drops_absent_columns(tmp_path):
    from narvox.recipes.trainer import validation_curve
    for version, text in enumerate(["step,epoch,train_loss,val_loss,val_acc\n9,0,3.0,,\n9,0,,2.5,0.1\n",
                                    "step,epoch,val_loss,val_acc\n19,1,1.25,0.5\n"]):
        (tmp_path / f"logs/version_{version}").mkdir(parents=True)
        (tmp_path / f"logs/version_{version}/metrics.csv").write_text(text)
    table = validation_curve(tmp_path, ("step", "epoch", "val_loss", "val_ctc", "val_acc"), "curve")
    assert table.splitlines()[2:] == ["| step | epoch | val_loss | val_acc |", "|---|---|---|---|",
                                      "| 9 | 0 | 2.500 | 0.100 |", "| 19 | 1 | 1.250 | 0.500 |"]
