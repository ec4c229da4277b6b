"""The one trainer of every model family: `fit(task, datamodule, config, exp_dir)`.

What it owns, so that no family copies it:

- `exp_dir/config.yaml`, the config the run used;
- `exp_dir/checkpoints/`: the `average.n_best` best checkpoints by the task's validation metric,
  named `step<N>-<metric>=<value>.ckpt` (what narvox.recipes.average ranks), and `last.ckpt`,
  which always holds the latest weights and which a new run on the same exp_dir resumes from;
  with `curve_every_n_steps: N`, also the weights every N steps (`curve-step<N>.ckpt`), for
  learning curves of metrics too slow to compute while training (a TTS model's judged WER);
- logs: CSV in `exp_dir/logs`, and TensorBoard in `exp_dir/tensorboard` when tensorboard is
  installed (narvox does not depend on it);
- the hardware: the config's `trainer` section goes to Lightning's Trainer as it is
  (accelerator, devices, precision, strategy, num_nodes, max_epochs, ...).
"""
from __future__ import annotations

import csv
import importlib.util
import re
import time
from pathlib import Path
from typing import ClassVar

import pytorch_lightning as L
import torch
import yaml
from pytorch_lightning.callbacks import Checkpoint, LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

TASK_KEY = "narvox_task"  # the checkpoint entry naming the task that wrote it


class Task(L.LightningModule):
    """A family's Lightning module, as the trainer and narvox.recipes.average see it."""
    kind: ClassVar[str]                 # its name in narvox.recipes.tasks
    monitor: ClassVar[str] = "val_loss"  # the validation metric that ranks its checkpoints
    mode: ClassVar[str] = "min"

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # averaging reads it to know which task turns the weights into an output directory
        checkpoint[TASK_KEY] = self.kind


class TimedTask(Task):
    """A Task that counts its training time over every run that resumed it (a buffer, so it is in
    the checkpoints) and logs it with validation as `train_minutes`: the x axis of learning curves
    against CPU or GPU time."""

    def __init__(self):
        super().__init__()
        self.register_buffer("train_seconds", torch.zeros((), dtype=torch.float64))
        self._step_started: float | None = None

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        self._step_started = time.perf_counter()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.train_seconds += time.perf_counter() - self._step_started

    def log_train_minutes(self, **log_options) -> None:
        self.log("train_minutes", self.train_seconds.float() / 60, **log_options)


def warmup_then_decay(step: int, warmup_steps: int, max_steps: int, final_lr_ratio: float) -> float:
    """The learning-rate factor: linear warm-up, then exponential decay to `final_lr_ratio` at
    `max_steps` (held there after)."""
    warm = min(1.0, (step + 1) / warmup_steps)
    return warm * final_lr_ratio ** min(1.0, step / max_steps)


def validation_curve(exp_dir: str | Path, columns: tuple[str, ...], title: str) -> str:
    """A run's validation metrics as a Markdown table, a row per validation, from every
    logs/version_*/metrics.csv (a resumed run adds a version). Rows are those with the first
    `val_` column; columns no row has are left out."""
    key = next(c for c in columns if c.startswith("val_"))
    rows = {}
    for path in sorted(Path(exp_dir).glob("logs/version_*/metrics.csv")):
        with open(path, newline="") as f:
            rows.update({int(row["step"]): row for row in csv.DictReader(f) if row.get(key)})
    columns = [c for c in columns if any(r.get(c) for r in rows.values())]
    lines = [title, "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for step in sorted(rows):
        cells = [(rows[step].get(c) or "", c) for c in columns]
        lines.append("| " + " | ".join(v if c in ("step", "epoch") or not v else f"{float(v):.3f}"
                                       for v, c in cells) + " |")
    return "\n".join(lines) + "\n"


def checkpoint_score(path: Path, monitor: str) -> float | None:
    """The metric value in a top-k checkpoint's name; None for last.ckpt and other files."""
    m = re.search(rf"-{re.escape(monitor)}=(-?\d+\.\d+)", path.name)
    return float(m.group(1)) if m else None


class LastCheckpoint(Checkpoint):
    """Keeps last.ckpt at the latest weights. Lightning's own `save_last` writes it only beside a
    new top-k checkpoint, so a run stopped between validations (a step limit, a kill) would resume
    from older weights than it had.

    Saves after every validation, when training ends, and when a single-process run gets SIGTERM
    (what `kill`, SLURM and torchrun send): Lightning raises SIGTERMException at a step boundary,
    so no step is lost. Under DDP the ranks can see the signal at different steps and a save there
    would be a collective that some ranks skip; those runs resume from the last validation.
    A Checkpoint subclass, so Lightning runs it after ModelCheckpoint, and last.ckpt records the
    top-k checkpoint that the same validation wrote."""

    def __init__(self, path: Path):
        self.path = path

    def _save(self, trainer: L.Trainer) -> None:
        # every rank calls it: under DDP it is a collective that only rank 0 writes out
        trainer.save_checkpoint(self.path)

    def on_validation_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, task: L.LightningModule) -> None:
        self._save(trainer)

    def on_exception(self, trainer: L.Trainer, task: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.world_size == 1:
            self._save(trainer)


def _loggers(exp_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(exp_dir, name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(exp_dir, name="tensorboard"))
    return loggers


def fit(task: Task, datamodule: L.LightningDataModule, config: dict, exp_dir: str | Path) -> Path:
    """Trains `task` on `datamodule` as `config` says, resuming from exp_dir's last.ckpt if any.
    A datamodule whose samplers shard by rank themselves sets `shards_by_rank = True`; the others
    get Lightning's DistributedSampler under DDP."""
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    checkpoints = exp_dir / "checkpoints"
    best = ModelCheckpoint(dirpath=checkpoints, monitor=task.monitor, mode=task.mode,
                           save_top_k=config.get("average", {}).get("n_best", 5),
                           filename=f"step{{step:07d}}-{task.monitor}={{{task.monitor}:.4f}}",
                           auto_insert_metric_name=False)
    last = checkpoints / "last.ckpt"
    callbacks = [best, LastCheckpoint(last), LearningRateMonitor()]
    if config.get("curve_every_n_steps"):  # weights for a learning curve judged after training
        callbacks.append(ModelCheckpoint(dirpath=checkpoints, filename="curve-step{step:07d}", save_top_k=-1,
                                         every_n_train_steps=config["curve_every_n_steps"], save_weights_only=True,
                                         auto_insert_metric_name=False))
    trainer = L.Trainer(default_root_dir=exp_dir, logger=_loggers(exp_dir), callbacks=callbacks,
                        use_distributed_sampler=not getattr(datamodule, "shards_by_rank", False),
                        **config.get("trainer", {}))
    trainer.fit(task, datamodule=datamodule, ckpt_path=last if last.is_file() else None)
    return exp_dir
