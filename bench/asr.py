"""ASR benchmark: WER, CER and real-time factor of every decoder, in PyTorch and ONNX Runtime.

  python bench/asr.py --ctc-attention egs/synth_en/asr/exp/ctc_attention \
      --paraformer egs/synth_en/asr/exp/paraformer --data egs/synth_en/asr/data --threads 2

Each model directory holds `final/` (PyTorch) and `onnx/` (bundles). Audio is loaded into memory
first; the timed span is waveform -> features -> model -> search -> text. WER/CER come from a
batch-16 pass over each whole test set; RTF is measured at batch 1 and batch 16.
Writes bench/results/asr.json and bench/results/asr.md.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from narvox.asr.api import _OnnxBackend, _TorchBackend
from narvox.data import read_data_dir
from narvox.eval.wer import error_rates
from narvox.runtime.asr import OnnxASR
from narvox.text.tokens import tokens_to_text

# name -> (model key, torch method, bundle, onnx method)
SYSTEMS = {
    "CTC greedy": ("ctc_attention", "ctc_greedy", "ctc", "greedy"),
    "CTC beam 5": ("ctc_attention", "ctc_beam", "ctc", "beam"),
    "Paraformer": ("paraformer", "greedy", "paraformer", "greedy"),
    "AR greedy": ("ctc_attention", "attention_greedy", "attention", "greedy"),
    "AR beam 5": ("ctc_attention", "attention_beam", "attention", "beam"),
    "CTC beam 5 + AR rescoring": ("ctc_attention", "attention_rescore", "attention", "rescore"),
}


def run(backend, audio: list[np.ndarray], batch_size: int) -> tuple[list[str], float]:
    # longest first, as a server would batch: the padding cost is what users pay
    order = sorted(range(len(audio)), key=lambda i: -len(audio[i]))
    texts = [""] * len(audio)
    start = time.perf_counter()
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        for j, (ids, _) in zip(idx, backend.recognize([audio[k] for k in idx])):
            texts[j] = tokens_to_text(backend.symbols[t] for t in ids)
    return texts, time.perf_counter() - start


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ctc-attention", type=Path, required=True)
    p.add_argument("--paraformer", type=Path, required=True)
    p.add_argument("--data", type=Path, required=True, help="directory holding the test sets")
    p.add_argument("--sets", nargs="+", default=["test_seen", "test_unseen_voice"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rtf-utts", type=int, default=100, help="utterances timed at batch 1")
    p.add_argument("--systems", nargs="+", default=list(SYSTEMS))
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    dirs = {"ctc_attention": args.ctc_attention, "paraformer": args.paraformer}
    rows = []
    for test_set in args.sets:
        data = read_data_dir(args.data / test_set)
        utts = data.utt_ids
        audio = [data.load_audio(u, 16000)[0] for u in utts]
        refs = [data.text[u] for u in utts]
        seconds = sum(len(a) for a in audio) / 16000
        rtf_audio = audio[:args.rtf_utts]
        rtf_seconds = sum(len(a) for a in rtf_audio) / 16000
        for name in args.systems:
            key, torch_method, bundle, onnx_method = SYSTEMS[name]
            backends = {
                "pytorch": _TorchBackend(dirs[key] / "final", torch_method),
                "onnxruntime": _OnnxBackend(OnnxASR(dirs[key] / "onnx" / bundle, num_threads=args.threads), onnx_method),
            }
            for runtime, backend in backends.items():
                run(backend, audio[:4], 4)  # warm-up
                hyps, t16 = run(backend, audio, 16)
                _, t1 = run(backend, rtf_audio, 1)
                rates = error_rates(refs, hyps)
                row = {"set": test_set, "system": name, "runtime": runtime, "wer": rates.wer,
                       "cer": rates.cer, "rtf_batch1": t1 / rtf_seconds, "rtf_batch16": t16 / seconds,
                       "utterances": len(utts), "audio_seconds": seconds, "threads": args.threads}
                rows.append(row)
                print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr.json").write_text(json.dumps(rows, indent=2))
    (args.out / "asr.md").write_text(markdown(rows))
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = ["| test set | system | runtime | WER % | CER % | RTF batch 1 | RTF batch 16 |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['system']} | {r['runtime']} | {100 * r['wer']:.2f} | "
                     f"{100 * r['cer']:.2f} | {r['rtf_batch1']:.4f} | {r['rtf_batch16']:.4f} |")
    speed = []
    for s in sorted({r["set"] for r in rows}):
        for runtime in ("pytorch", "onnxruntime"):
            by = {r["system"]: r for r in rows if r["set"] == s and r["runtime"] == runtime}
            if "AR beam 5" in by:
                for name in ("CTC greedy", "Paraformer"):
                    if name in by:
                        speed.append(f"| {s} | {runtime} | {name} | "
                                     f"{by['AR beam 5']['rtf_batch1'] / by[name]['rtf_batch1']:.1f}x | "
                                     f"{by['AR beam 5']['rtf_batch16'] / by[name]['rtf_batch16']:.1f}x |")
    ort = []
    for r in rows:
        if r["runtime"] == "onnxruntime":
            t = next(x for x in rows if x["runtime"] == "pytorch" and x["set"] == r["set"] and x["system"] == r["system"])
            ort.append(f"| {r['set']} | {r['system']} | {t['rtf_batch1'] / r['rtf_batch1']:.2f}x | "
                       f"{t['rtf_batch16'] / r['rtf_batch16']:.2f}x |")
    out = "\n".join(lines)
    if speed:
        out += ("\n\nSpeed-up over AR beam 5 (same encoder), end to end:\n\n| test set | runtime | system | "
                "batch 1 | batch 16 |\n|---|---|---|---|---|\n" + "\n".join(speed))
    if ort:
        out += ("\n\nONNX Runtime speed-up over eager PyTorch:\n\n| test set | system | batch 1 | batch 16 |\n"
                "|---|---|---|---|\n" + "\n".join(ort))
    return out + "\n"


if __name__ == "__main__":
    main()
