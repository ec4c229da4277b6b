"""Train the narvox codec: `python -m narvox.recipes.codec_train --config conf/codec.yaml
--exp-dir exp/codec --train data/train --valid data/dev [--set key=value ...]`.

Resumes from `exp_dir/checkpoints/last.ckpt`. Multi-GPU / multi-node is Lightning's DDP, set in the
config's `trainer` section (the discriminator is idle before `adversarial_from`, so DDP needs
`strategy: ddp_find_unused_parameters_true`).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytorch_lightning as L
import yaml
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

from narvox.recipes.codec_task import CodecDataModule, CodecTask
from narvox.recipes.train import load_config


def train(config: dict, exp_dir: str | Path, train_dir: str, valid_dir: str) -> Path:
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    L.seed_everything(config.get("seed", 0), workers=True)
    task = CodecTask(config["model"], config.get("loss"), config.get("optim"))
    data = CodecDataModule(train_dir, valid_dir, task.model.config.sample_rate, **config.get("data", {}))
    checkpoints = ModelCheckpoint(dirpath=exp_dir / "checkpoints", monitor="val_loss", mode="min",
                                  save_top_k=config.get("keep_best", 2), save_last=True,
                                  filename="step{step:06d}-val_loss={val_loss:.4f}", auto_insert_metric_name=False)
    trainer = L.Trainer(default_root_dir=exp_dir, callbacks=[checkpoints, LearningRateMonitor()],
                        logger=L.loggers.CSVLogger(exp_dir, name="logs"), **config.get("trainer", {}))
    last = exp_dir / "checkpoints" / "last.ckpt"
    trainer.fit(task, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    if trainer.world_size == 1:
        # the step limit can stop training between validations, and Lightning writes last.ckpt
        # only beside a new top-k checkpoint: save the final weights. (Under DDP this save is a
        # collective that raced the ranks' shutdown; DDP runs keep the last validation's state.)
        trainer.save_checkpoint(last)
    return exp_dir


def package(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """A training checkpoint -> a codec directory (codec.yaml + inference weights)."""
    from narvox.codecs.narvox_codec import save_codec_dir
    task = CodecTask.load_from_checkpoint(str(checkpoint), map_location="cpu")
    return save_codec_dir(task.model, out_dir)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--train", required=True, help="Kaldi data directory of the training audio")
    p.add_argument("--valid", required=True, help="Kaldi data directory of the validation audio")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config entries, e.g. trainer.max_steps=100")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    train(load_config(args.config, args.set), args.exp_dir, args.train, args.valid)


if __name__ == "__main__":
    main()
