"""The Lightning module that trains any narvox ASR model."""
from __future__ import annotations

import pytorch_lightning as L
import torch

from narvox.asr.build import build_model


def noam_lambda(warmup: int):
    """Linear warm-up to the peak, then inverse square-root decay (the Transformer schedule)."""
    def factor(step: int) -> float:
        step = max(step, 1)
        return min(step / warmup, (warmup / step) ** 0.5)
    return factor


class AsrTask(L.LightningModule):
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
