"""Average the N best checkpoints (by validation loss) into one model directory."""
from __future__ import annotations

import argparse
import logging
import re
import shutil
from pathlib import Path

import torch

from narvox.asr.build import build_model, save_model

log = logging.getLogger(__name__)
SCORE = re.compile(r"val_loss=([0-9.]+)")


def best_checkpoints(ckpt_dir: Path, n: int) -> list[Path]:
    scored = []
    for path in ckpt_dir.glob("*.ckpt"):
        m = SCORE.search(path.name)
        if m:
            scored.append((float(m.group(1).rstrip(".")), path))
    if not scored:
        raise FileNotFoundError(f"{ckpt_dir}: no checkpoints named with val_loss")
    return [p for _, p in sorted(scored)[:n]]


def average_checkpoints(paths: list[Path]) -> tuple[dict, dict]:
    """Element-wise mean of the model weights; integer buffers are taken from the first."""
    total, hparams = None, None
    for path in paths:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        state = {k.removeprefix("model."): v for k, v in ckpt["state_dict"].items()}
        if total is None:
            total, hparams = {k: v.clone().double() if v.is_floating_point() else v.clone()
                              for k, v in state.items()}, ckpt["hyper_parameters"]
        else:
            for k, v in state.items():
                if v.is_floating_point():
                    total[k] += v.double()
    return {k: (v / len(paths)).float() if v.is_floating_point() else v for k, v in total.items()}, hparams


def average(exp_dir: str | Path, n_best: int, out_dir: str | Path) -> Path:
    exp_dir, out_dir = Path(exp_dir), Path(out_dir)
    paths = best_checkpoints(exp_dir / "checkpoints", n_best)
    log.info("averaging %s", ", ".join(p.name for p in paths))
    state, hp = average_checkpoints(paths)
    model = build_model(hp["model"], hp["vocab_size"])
    model.load_state_dict(state)
    save_model(out_dir, model, hp["model"])
    for name in ("tokens.txt", "tokenizer.json", "bpe.model", "am.mvn", "config.yaml"):
        if (exp_dir / name).is_file():
            shutil.copy(exp_dir / name, out_dir / name)
    (out_dir / "averaged_from.txt").write_text("".join(f"{p.name}\n" for p in paths))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--exp-dir", required=True)
    p.add_argument("--n-best", type=int, default=5)
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(average(args.exp_dir, args.n_best, args.out))


if __name__ == "__main__":
    main()
