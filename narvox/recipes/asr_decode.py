"""Decode test sets with a trained model or a bundle and score them.

  python -m narvox.recipes.asr_decode --model exp/paraformer/final --data data/test_seen \
      --method greedy --out exp/paraformer/decode_test_seen_greedy

writes `hyp.txt`, `ref.txt`, `result.json` (WER, CER, error counts, real-time factor).
`--results` collects every result.json below an exp dir into RESULTS.md; `--curve exp/<model>`
prints a training run's validation losses and accuracy, a row per validation.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from narvox.asr.api import ASR
from narvox.data import read_data_dir
from narvox.eval.wer import error_rates


CURVE_COLUMNS = ("step", "epoch", "val_loss", "val_ctc", "val_att", "val_acc")


def decode(model: str, data_dir: str, out: str | None = None, method: str = "greedy",
           batch_size: int = 8, num_threads: int = 2) -> dict:
    """Transcribe a data dir and score it; with `out`, also write hyp/ref/result files there."""
    data = read_data_dir(data_dir)
    asr = ASR.from_pretrained(model, method=method, num_threads=num_threads)
    utts = data.utt_ids
    paths = [data.audio_source(u)[0] for u in utts]
    start = time.perf_counter()
    results = asr.transcribe(paths, batch_size=batch_size)
    seconds = time.perf_counter() - start
    failed = [r.source for r in results if r.error]
    rates = error_rates([data.text[u] for u in utts], [r.text for r in results])
    audio = data.total_seconds()
    result = {"model": str(model), "data": str(data_dir), "method": method, **rates.to_dict(),
              "rtf": seconds / audio, "audio_seconds": audio, "failed": failed}
    if out is not None:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "hyp.txt").write_text("".join(f"{u} {r.text}\n" for u, r in zip(utts, results)))
        (out_dir / "ref.txt").write_text("".join(f"{u} {data.text[u]}\n" for u in utts))
        (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def collect(exp_dir: str) -> str:
    rows = []
    for path in sorted(Path(exp_dir).glob("**/result.json")):
        r = json.loads(path.read_text())
        rows.append(f"| {path.parent.relative_to(exp_dir)} | {Path(r['data']).name} | {r['method']} | "
                    f"{100 * r['wer']:.2f} | {100 * r['cer']:.2f} | {r['utterances']} | {r['rtf']:.4f} |")
    table = ["| decode dir | test set | method | WER % | CER % | utts | RTF |",
             "|---|---|---|---|---|---|---|", *rows]
    text = "# RESULTS\n\n" + "\n".join(table) + "\n"
    (Path(exp_dir) / "RESULTS.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--out")
    p.add_argument("--method", default="greedy", help="narvox.registry's decoding methods, e.g. beam, attention_beam")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--results", metavar="EXP_DIR", help="write EXP_DIR/RESULTS.md and exit")
    p.add_argument("--curve", metavar="EXP_DIR", help="print the learning curve of a training run and exit")
    args = p.parse_args(argv)
    if args.results:
        print(collect(args.results))
        return
    if args.curve:
        from narvox.recipes.trainer import validation_curve
        print(validation_curve(args.curve, CURVE_COLUMNS, f"Validation (clean dev set) of {args.curve}"))
        return
    r = decode(args.model, args.data, args.out, args.method, args.batch_size, args.num_threads)
    print(f"{args.out}: WER {100 * r['wer']:.2f}% CER {100 * r['cer']:.2f}% RTF {r['rtf']:.4f}")


if __name__ == "__main__":
    main()
