"""Train any narvox task:
`python -m narvox.recipes.train --task asr|codec --config conf/x.yaml --exp-dir exp/x
[the task's inputs: --train, --valid, ...] [--set key=value ...]`
(`--task NAME --help` lists the task's inputs).

Resumes from `exp_dir/checkpoints/last.ckpt` when it exists, so a killed run goes on where it
stopped. Hardware and precision come from the config's `trainer` section: CPU; one GPU
(`accelerator: gpu, devices: 1, precision: bf16-mixed`); several with Lightning's DDP
(`devices: N, strategy: ddp`); several machines with `num_nodes` and one process per GPU started
by SLURM or torchrun (egs/utils/asr.sh shows both launches).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pytorch_lightning as L
import yaml

from narvox.recipes.tasks import TASKS
from narvox.recipes.trainer import fit


def train(kind: str, config: dict, exp_dir: str | Path, **inputs) -> Path:
    """Builds task `kind` from its inputs (see narvox.recipes.tasks) and fits it in exp_dir."""
    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    # before the task is built, so that its initial weights are reproducible too
    L.seed_everything(config.get("seed", 0), workers=True)
    task, data = TASKS[kind].build(config, exp_dir, **inputs)
    return fit(task, data, config, exp_dir)


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
    # the task's own inputs are known once --task is: read that first, so --help lists them too
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--task", choices=sorted(TASKS))
    kind = pre.parse_known_args(argv)[0].task
    task_inputs = argparse.ArgumentParser(add_help=False)
    if kind:
        TASKS[kind].add_arguments(task_inputs.add_argument_group(f"{kind} inputs"))
    p = argparse.ArgumentParser(description=__doc__, parents=[task_inputs],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--config", required=True)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config entries, e.g. trainer.max_epochs=2")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    inputs = vars(task_inputs.parse_known_args(argv)[0])
    train(kind, load_config(args.config, args.set), args.exp_dir, **inputs)


if __name__ == "__main__":
    main()
