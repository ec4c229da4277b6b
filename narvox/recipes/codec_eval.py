"""Evaluate a codec on a data directory at each bitrate it serves: mel distance, SI-SDR, STOI, PESQ
and intelligibility retention (WER of narvox's ASR on decoded audio minus WER on the original).

    python -m narvox.recipes.codec_eval --codec exp/codec/model --data data/test_unseen_voice \
        --out exp/codec/eval_test_unseen_voice
    python -m narvox.recipes.codec_eval --curve exp/codec    # validation STOI etc. vs training minutes

Audio is encoded once at full depth and decoded at every depth (residual codes nest), on the
ONNX bundle when the codec directory has one (faster) or on PyTorch.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from narvox.data.kaldi import read_data_dir
from narvox.eval.codec import codec_metrics
from narvox.eval.wer import error_rates

log = logging.getLogger(__name__)


def open_codec(codec_dir: str | Path, runtime: str = "onnx", num_threads: int = 2):
    """The codec on ONNX Runtime (numpy in and out) or PyTorch."""
    if runtime == "onnx":
        from narvox.runtime import OnnxCodec
        return OnnxCodec(codec_dir, num_threads=num_threads)
    import torch
    from narvox.codecs import load_codec
    torch.set_num_threads(num_threads)
    return load_codec(codec_dir)


def resynthesize(codec, wavs: list[np.ndarray], depths: list[int], batch_size: int = 8) -> dict[int, list[np.ndarray]]:
    """Decoded audio of every utterance at every depth, cut to the original's length. Batches
    hold utterances of similar length (sorted), so little of each is padding."""
    decoded: dict[int, list[np.ndarray]] = {d: [np.empty(0)] * len(wavs) for d in depths}
    order = np.argsort([len(w) for w in wavs])
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        longest = max(len(wavs[i]) for i in idx)
        codes = np.asarray(codec.encode(np.stack([np.pad(wavs[i], (0, longest - len(wavs[i]))) for i in idx])))
        lengths = [codec.num_frames(len(wavs[i])) for i in idx]  # each row decoded as if alone
        for d in depths:
            audio = np.asarray(codec.decode(codes[:, :d], lengths))
            for row, i in enumerate(idx):
                decoded[d][i] = audio[row, : len(wavs[i])]
    return decoded


def evaluate(codec_dir: str | Path, data_dir: str | Path, depths: list[int] | None = None,
             asr_model: str | None = "ctc", max_utts: int | None = None, runtime: str = "onnx",
             num_threads: int = 2) -> dict:
    codec = open_codec(codec_dir, runtime, num_threads)
    depths = depths or sorted({1, 2, 3, 4, codec.max_codebooks})
    data = read_data_dir(data_dir)
    utts = data.utt_ids[:max_utts]
    wavs = [data.load_audio(u, codec.sample_rate)[0] for u in utts]
    decoded = resynthesize(codec, wavs, depths)
    asr = None
    if asr_model:
        from narvox.asr.api import ASR
        asr = ASR.from_pretrained(asr_model, num_threads=num_threads)
        refs = [data.text[u] for u in utts]
        base = error_rates(refs, [t.text for t in asr.transcribe([(w, codec.sample_rate) for w in wavs],
                                                                   batch_size=16)])
    rows = []
    for d in depths:
        per_utt = [codec_metrics(ref, est, codec.sample_rate) for ref, est in zip(wavs, decoded[d])]
        row = {"codebooks": d, "kbps": d * codec.frame_rate * np.log2(codec.codebook_size) / 1000,
               "utterances": len(utts)}
        for key in ("mel_distance", "si_sdr", "stoi", "pesq"):
            values = [m[key] for m in per_utt if m[key] is not None]
            row[key] = float(np.mean(values)) if values else None
            if key == "pesq":
                row["pesq_scored"] = len(values)
        if asr is not None:
            hyps = [t.text for t in asr.transcribe([(w, codec.sample_rate) for w in decoded[d]], batch_size=16)]
            wer = error_rates(refs, hyps).wer
            row.update(wer_original=100 * base.wer, wer_decoded=100 * wer, wer_delta=100 * (wer - base.wer))
        rows.append(row)
        log.info("%s", row)
    return {"codec": codec.identity(), "data": str(data_dir), "asr": asr_model, "rows": rows}


def quality_table(rows: list[dict]) -> list[str]:
    """The quality rows as Markdown table lines (shared with bench/codec.py)."""
    fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
    lines = ["| codebooks | kbps | mel distance | SI-SDR dB | STOI | PESQ (wb) | WER orig % | WER decoded % | WER loss |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['codebooks']} | {r['kbps']:g} | {r['mel_distance']:.3f} | {r['si_sdr']:.2f} | "
                     f"{r['stoi']:.3f} | {fmt(r['pesq'], '.2f')} | {fmt(r.get('wer_original'), '.2f')} | "
                     f"{fmt(r.get('wer_decoded'), '.2f')} | {fmt(r.get('wer_delta'), '+.2f')} |")
    return lines


def markdown(result: dict) -> str:
    return "\n".join([f"Codec {result['codec']['codec']} ({result['codec']['weights']}) on {result['data']} "
                      f"({result['rows'][0]['utterances']} utterances); ASR judge: {result['asr']}", "",
                      *quality_table(result["rows"])]) + "\n"


CURVE_COLUMNS = ("step", "train_minutes", "val_stoi", "val_stoi_q4", "val_mel_q8", "val_semantic")


def learning_curve(exp_dir: str | Path) -> str:
    from narvox.recipes.trainer import validation_curve
    return validation_curve(exp_dir, CURVE_COLUMNS, f"Learning curve of {exp_dir} (validation: the first 3 s "
                                                    "of the first dev utterances)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", help="codec directory (codec.yaml + model.pt [+ ONNX bundle])")
    p.add_argument("--data")
    p.add_argument("--out", help="writes <out>.json and <out>.md")
    p.add_argument("--depths", type=int, nargs="*", help="numbers of codebooks (default 1 2 3 4 max)")
    p.add_argument("--asr", default="ctc", help="narvox ASR model judging intelligibility; 'none' to skip")
    p.add_argument("--max-utts", type=int)
    p.add_argument("--runtime", default="onnx", choices=["onnx", "torch"])
    p.add_argument("--curve", metavar="EXP_DIR", help="print the learning curve of a training run instead")
    args = p.parse_args(argv)
    if args.curve:
        print(learning_curve(args.curve))
        return
    if not (args.codec and args.data and args.out):
        p.error("--codec, --data and --out are required (or --curve EXP_DIR)")
    logging.basicConfig(level=logging.INFO)
    result = evaluate(args.codec, args.data, args.depths, None if args.asr == "none" else args.asr,
                      args.max_utts, args.runtime)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
