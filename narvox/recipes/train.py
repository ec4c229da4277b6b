"""Train an ASR model: `python -m narvox.recipes.train --config conf/x.yaml --exp-dir exp/x ...`

Resumes from `exp_dir/checkpoints/last.ckpt` when it exists (a killed run continues where it
stopped). Keeps the N best checkpoints by validation loss for averaging. Multi-GPU / multi-node
training is Lightning's DDP, chosen in the config's `trainer` section.
"""
from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import pytorch_lightning as L
import torch
import yaml
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

from narvox.asr.frontend import AsrFrontend
from narvox.data.feats_dump import FbankDump
from narvox.recipes.asr_data import AsrDataModule
from narvox.recipes.asr_task import AsrTask
from narvox.text.tokens import load_tokenizer

log = logging.getLogger(__name__)


def train(config: dict, exp_dir: str | Path, train_dir: str, valid_dir: str, lang_dir: str,
          cmvn_path: str | None = None) -> Path:
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    # inference splits recordings below this: longer pieces than the model ever heard make
    # Paraformer's CIF stop early
    frames = max(n for _, n in FbankDump(train_dir).index.values())
    config.setdefault("data", {})["longest_utterance_seconds"] = round(frames * 0.01, 2)
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    tokenizer = load_tokenizer(lang_dir)
    tokenizer.save(exp_dir)
    kind = config["model"]["kind"]
    if kind == "paraformer":
        if cmvn_path is None:
            raise ValueError("Paraformer training needs --cmvn (am.mvn of LFR features)")
        shutil.copy(cmvn_path, exp_dir / "am.mvn")
    frontend = AsrFrontend.for_model(kind, exp_dir, config["model"].get("lfr_m", 7),
                                     config["model"].get("lfr_n", 6))
    for dump_dir in (train_dir, valid_dir):
        used = FbankDump(dump_dir).fbank_config
        if used != frontend.fbank_config:
            raise ValueError(f"{dump_dir} holds fbank {used}, but a {kind} model needs "
                             f"{frontend.fbank_config}: dump the features with the matching --fbank preset")
    d = config.get("data", {})
    data = AsrDataModule(train_dir, valid_dir, tokenizer, frontend, max_seconds=d.get("max_seconds", 200),
                         num_workers=d.get("num_workers", 1), spec_augment=d.get("spec_augment", True),
                         seed=config.get("seed", 0))
    L.seed_everything(config.get("seed", 0), workers=True)
    task = AsrTask(config["model"], len(tokenizer), config.get("optim", {}))
    if kind != "paraformer":
        data.setup()
        _init_cmvn(task, data)
    t = dict(config.get("trainer", {}))
    n_best = config.get("average", {}).get("n_best", 5)
    checkpoints = ModelCheckpoint(dirpath=exp_dir / "checkpoints", monitor="val_loss", mode="min",
                                  save_top_k=n_best, save_last=True,
                                  filename="epoch{epoch:02d}-val_loss={val_loss:.4f}",
                                  auto_insert_metric_name=False)
    trainer = L.Trainer(default_root_dir=exp_dir, callbacks=[checkpoints, LearningRateMonitor()],
                        logger=L.loggers.CSVLogger(exp_dir, name="logs"),
                        use_distributed_sampler=False,  # DurationBatchSampler shards by rank itself
                        **t)
    last = exp_dir / "checkpoints" / "last.ckpt"
    trainer.fit(task, datamodule=data, ckpt_path=str(last) if last.is_file() else None)
    return exp_dir


def _init_cmvn(task: AsrTask, data: AsrDataModule, max_utts: int = 2000) -> None:
    """Global fbank statistics of the training set go into the model's CMVN buffers."""
    from narvox.features import CmvnAccumulator
    acc = CmvnAccumulator()
    for utt in data.train.utts[:max_utts]:
        acc.add(data.train.dump[utt])
    cmvn = acc.result()
    task.model.encoder.cmvn.neg_mean.copy_(torch.from_numpy(cmvn.neg_mean))
    task.model.encoder.cmvn.inv_stddev.copy_(torch.from_numpy(cmvn.inv_stddev))


def load_config(path: str | Path, overrides: list[str]) -> dict:
    """A YAML config with `key.sub=value` overrides (values parsed as YAML)."""
    config = yaml.safe_load(Path(path).read_text())
    for item in overrides:
        key, value = item.split("=", 1)
        node = config
        *parents, leaf = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    return config


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--train", required=True, help="fbank dump dir of the training set")
    p.add_argument("--valid", required=True, help="fbank dump dir of the validation set")
    p.add_argument("--lang", required=True, help="tokenizer directory (tokens.txt, ...)")
    p.add_argument("--cmvn", help="am.mvn (Paraformer)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config entries, e.g. trainer.max_epochs=2")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    config = load_config(args.config, args.set)
    train(config, args.exp_dir, args.train, args.valid, args.lang, args.cmvn)


if __name__ == "__main__":
    main()
