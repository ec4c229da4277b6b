"""Average checkpoints into the output directory of the task that wrote them:
`python -m narvox.recipes.average --exp-dir exp/x --n-best 3 --out exp/x/final`
averages the 3 best checkpoints by the task's validation metric;
`python -m narvox.recipes.average --checkpoints exp/x/checkpoints/last.ckpt --out DIR` averages the
ones named (one: writes its weights as they are).

The weights are averaged element for element, whatever the task; the task then writes its output
(ASR: a model directory with model.pt and the tokenizer; codec: a codec directory).
"""
from __future__ import annotations

import argparse
import inspect
import logging
from pathlib import Path

import torch

from narvox.recipes.tasks import TASKS, TaskEntry
from narvox.recipes.trainer import TASK_KEY, checkpoint_score

log = logging.getLogger(__name__)


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False, mmap=True)


def _task_of(checkpoint: dict) -> TaskEntry:
    if TASK_KEY in checkpoint:
        return TASKS[checkpoint[TASK_KEY]]
    # written before tasks recorded their name: the task that takes these hyperparameters
    hparams = set(checkpoint["hyper_parameters"])
    return next(e for e in TASKS.values() if set(inspect.signature(e.task).parameters) == hparams)


def best_checkpoints(exp_dir: str | Path, n: int | None = None) -> list[Path]:
    """The n best checkpoints of exp_dir (all it holds: None) by the validation metric of the task
    that wrote them."""
    paths = sorted((Path(exp_dir) / "checkpoints").glob("*.ckpt"))
    if not paths:
        raise FileNotFoundError(f"{exp_dir}/checkpoints: no checkpoints")
    task = _task_of(_load(paths[0])).task
    scored = [(score, p) for p in paths if (score := checkpoint_score(p, task.monitor)) is not None]
    if not scored:
        raise FileNotFoundError(f"{exp_dir}/checkpoints: no checkpoints named with {task.monitor}")
    sign = 1 if task.mode == "min" else -1
    return [p for _, p in sorted(scored, key=lambda sp: sign * sp[0])[:n]]


def average(paths: list[Path], out_dir: str | Path) -> Path:
    """Writes the task's output directory from the mean of the checkpoints' weights. Integer
    buffers (step counters) are taken from the first checkpoint."""
    paths, out_dir = [Path(p) for p in paths], Path(out_dir)
    first = _load(paths[0])
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["state_dict"].items()}
    for path in paths[1:]:
        for k, v in _load(path)["state_dict"].items():
            if v.is_floating_point():
                total[k] += v.double()
    entry = _task_of(first)
    task = entry.task(**first["hyper_parameters"])
    # load_state_dict casts back to each weight's own dtype
    task.load_state_dict({k: v / len(paths) if v.is_floating_point() else v for k, v in total.items()})
    # a checkpoint lies in <exp dir>/checkpoints/, beside what the task put in the exp dir
    entry.write(task.eval(), paths[0].parent.parent, out_dir)
    (out_dir / "averaged_from.txt").write_text("".join(f"{p.name}\n" for p in paths))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--exp-dir", type=Path, help="average the best checkpoints of this experiment")
    which.add_argument("--checkpoints", type=Path, nargs="+", help="average these checkpoints")
    p.add_argument("--n-best", type=int, help="with --exp-dir: how many (default: all the trainer kept)")
    p.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    paths = args.checkpoints or best_checkpoints(args.exp_dir, args.n_best)
    log.info("averaging %s", ", ".join(p.name for p in paths))
    print(average(paths, args.out))


if __name__ == "__main__":
    main()
