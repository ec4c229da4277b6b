"""The TTS training task: the Lightning module that trains any narvox TTS backend, how the
trainer builds it and its data from a recipe's data dirs, and how trained weights become a
model directory (model.pt + the phone vocabulary)."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from narvox.codecs import load_codec
from narvox.recipes.trainer import TimedTask, warmup_then_decay
from narvox.recipes.tts_data import TtsDataModule
from narvox.text.tokens import load_tokenizer
from narvox.tts.build import build_model, save_model

# weights of the backends' losses (accuracies are logged, never weighted); the binarisation loss
# of the aligned conditioning starts at `binarize_from` steps, once the soft alignment has formed
LOSS_WEIGHTS = {"ce_first": 1.0, "ce_rest": 1.0, "ce_levels": 1.0, "forward_sum": 1.0, "duration": 1.0, "binarize": 1.0,
                "binarize_from": 2000}
TOKENIZER_FILES = ("tokens.txt", "tokenizer.json")


class TtsTask(TimedTask):
    kind = "tts"

    def __init__(self, model: dict, n_phones: int, codec: dict, optim: dict | None = None, loss: dict | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model, n_phones)
        self.optim_cfg = {"lr": 1e-3, "warmup_steps": 500, "max_steps": 20000, "final_lr_ratio": 0.05,
                          "weight_decay": 0.01, **(optim or {})}
        self.weights = {**LOSS_WEIGHTS, **(loss or {})}

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        out = self.model.loss(batch)
        w = dict(self.weights)
        if self.global_step < w["binarize_from"]:
            w["binarize"] = 0.0
        out["loss"] = sum(w[name] * value for name, value in out.items() if name in w)
        size = batch["phones"].size(0)
        for name, value in out.items():
            self.log(f"{stage}_{name}", value, batch_size=size, sync_dist=stage == "val",
                     prog_bar=name in ("loss", "acc_first"))
        return out["loss"]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self.log_train_minutes(sync_dist=True)

    def configure_optimizers(self):
        o = self.optim_cfg
        opt = torch.optim.AdamW(self.parameters(), lr=o["lr"], betas=(0.9, 0.98), weight_decay=o["weight_decay"])
        schedule = lambda step: warmup_then_decay(step, o["warmup_steps"], o["max_steps"], o["final_lr_ratio"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def add_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--train", required=True, help="data dir of the training set (text_phones, codes_<codec>.bin)")
    p.add_argument("--valid", required=True, help="data dir of the validation set")
    p.add_argument("--lang", required=True, help="phone vocabulary directory (tokens.txt, tokenizer.json)")
    p.add_argument("--codec", default="narvox", help="the codec whose dumped codes the model learns")


def build(config: dict, exp_dir: Path, train: str, valid: str, lang: str, codec: str = "narvox"):
    """The task and its data; puts the phone vocabulary in exp_dir for the model directory."""
    tokenizer = load_tokenizer(lang)
    for name in TOKENIZER_FILES:
        shutil.copy(Path(lang) / name, exp_dir / name)
    identity = load_codec(codec).identity()
    m = config["model"]
    task = TtsTask(m, len(tokenizer), identity, config.get("optim"), config.get("loss"))
    c = task.model.config
    data_config = config.get("data", {})
    if "prompt_seconds" in data_config:  # inference must crop prompts alike, so the model records it
        raise ValueError("prompt_seconds is a model setting: set model.prompt_seconds, not data.prompt_seconds")
    data = TtsDataModule(train, valid, tokenizer.table, identity, c.conditioning, c.n_codebooks,
                         seed=config.get("seed", 0), prompt_seconds=c.prompt_seconds, **data_config)
    return task, data


def write_model(task: TtsTask, exp_dir: Path, out_dir: Path) -> Path:
    """A TTS model directory of the task's weights."""
    save_model(out_dir, task.model, task.hparams.model, task.hparams.codec)
    for name in TOKENIZER_FILES:
        shutil.copy(exp_dir / name, out_dir / name)
    return out_dir
