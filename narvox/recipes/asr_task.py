"""The ASR training task: the Lightning module that trains any narvox ASR model, how the trainer
builds it and its data from a recipe's dumps, and how trained weights become a model directory."""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch

from narvox import registry
from narvox.asr.build import build_model, save_model
from narvox.asr.frontend import AsrFrontend
from narvox.data.feats_dump import FbankDump
from narvox.recipes.asr_data import AsrDataModule
from narvox.recipes.trainer import Task
from narvox.text.tokens import load_tokenizer

# what a model directory needs from the experiment dir besides model.pt: the tokenizer, am.mvn
# (LFR models) and config.yaml (the longest training utterance, which inference splits below)
MODEL_DIR_FILES = ("tokens.txt", "tokenizer.json", "bpe.model", "am.mvn", "config.yaml")


def noam_lambda(warmup: int):
    """Linear warm-up to the peak, then inverse square-root decay (the Transformer schedule)."""
    def factor(step: int) -> float:
        step = max(step, 1)
        return min(step / warmup, (warmup / step) ** 0.5)
    return factor


class AsrTask(Task):
    kind = "asr"

    def __init__(self, model: dict, vocab_size: int, optim: dict):
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(model, vocab_size)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        out = self.model(batch["feats"], batch["feat_lens"], batch["targets"], batch["target_lens"])
        if stage == "train" and self.global_step < self.hparams.optim.get("ctc_only_steps", 0):
            # curriculum: a fresh encoder first learns to align from CTC alone; the decoder's and
            # the predictor's losses, added from the start, held it on the CTC plateau
            out["loss"] = out["ctc"]
        size = batch["feats"].size(0)
        for name, value in out.items():
            self.log(f"{stage}_{name}", value, batch_size=size, sync_dist=stage == "val",
                     prog_bar=name in ("loss", "acc"))
        return out["loss"]

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def configure_optimizers(self):
        o = self.hparams.optim
        opt = torch.optim.AdamW(self.parameters(), lr=o.get("lr", 2e-3),
                                weight_decay=o.get("weight_decay", 1e-6), betas=(0.9, 0.98))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, noam_lambda(o.get("warmup_steps", 1000)))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def add_arguments(p: argparse._ArgumentGroup) -> None:
    p.add_argument("--train", required=True, help="fbank dump dir of the training set")
    p.add_argument("--valid", required=True, help="fbank dump dir of the validation set")
    p.add_argument("--lang", required=True, help="tokenizer directory (tokens.txt, ...)")
    p.add_argument("--cmvn", help="am.mvn of the LFR features (Paraformer)")


def build(config: dict, exp_dir: Path, train: str, valid: str, lang: str,
          cmvn: str | None = None) -> tuple[AsrTask, AsrDataModule]:
    """The task and its data; puts the tokenizer (and am.mvn) in exp_dir for the model dir."""
    # inference splits recordings below this: longer pieces than the model ever heard make
    # Paraformer's CIF stop early
    frames = max(n for _, n in FbankDump(train).index.values())
    config.setdefault("data", {})["longest_utterance_seconds"] = round(frames * 0.01, 2)
    tokenizer = load_tokenizer(lang)
    tokenizer.save(exp_dir)
    m = config["model"]
    lfr = registry.training_kind(m["kind"]).lfr
    if lfr:
        if cmvn is None:
            raise ValueError(f"{m['kind']} training needs --cmvn (am.mvn of LFR features)")
        shutil.copy(cmvn, exp_dir / "am.mvn")
    frontend = AsrFrontend.for_model(m["kind"], exp_dir, m.get("lfr_m", 7), m.get("lfr_n", 6))
    for dump_dir in (train, valid):
        used = FbankDump(dump_dir).fbank_config
        if used != frontend.fbank_config:
            raise ValueError(f"{dump_dir} holds fbank {used}, but a {m['kind']} model needs "
                             f"{frontend.fbank_config}: dump the features with the matching --fbank preset")
    d = config.get("data", {})
    data = AsrDataModule(train, valid, tokenizer, frontend, max_seconds=d.get("max_seconds", 200),
                         num_workers=d.get("num_workers", 1), spec_augment=d.get("spec_augment", True),
                         augment=d.get("augment"), vocal_tract=d.get("vocal_tract"), seed=config.get("seed", 0),
                         clean_epochs=d.get("clean_epochs", 0))
    task = AsrTask(m, len(tokenizer), config.get("optim", {}))
    if not lfr:  # LFR models are normalised by am.mvn; the others by CMVN buffers in the graph
        data.setup()
        _init_cmvn(task, data)
    return task, data


def _init_cmvn(task: AsrTask, data: AsrDataModule, max_utts: int = 2000) -> None:
    """Global fbank statistics of the training set go into the model's CMVN buffers."""
    from narvox.features import CmvnAccumulator
    acc = CmvnAccumulator()
    for utt in data.train.utts[:max_utts]:
        acc.add(data.train.dump[utt])
    cmvn = acc.result()
    task.model.encoder.cmvn.neg_mean.copy_(torch.from_numpy(cmvn.neg_mean))
    task.model.encoder.cmvn.inv_stddev.copy_(torch.from_numpy(cmvn.inv_stddev))


def write_model(task: AsrTask, exp_dir: Path, out_dir: Path) -> Path:
    """A model directory (what narvox.asr and the exporter load) of the task's weights."""
    save_model(out_dir, task.model, task.hparams.model)
    for name in MODEL_DIR_FILES:
        if (exp_dir / name).is_file():
            shutil.copy(exp_dir / name, out_dir / name)
    return out_dir
