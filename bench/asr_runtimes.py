"""ASR bundles in three runtimes: narvox.runtime, sherpa-onnx on the same files, and narvox.runtime
on the int8 copy (`narvox quantize`). WER, CER, real-time factor at batch 1, and how many
transcripts sherpa-onnx and the int8 copy give exactly as narvox.runtime does; the real-time factor
also at batch 16 (longest first, as a server batches), where int8's matrix products pay off.

  python bench/asr_runtimes.py --bundles ctc paraformer --data egs/synth_en/asr/data/test_seen --threads 2

Audio is loaded into memory first; each runtime's timed span is waveform -> features -> model ->
search -> text (sherpa-onnx computes its own fbank, as its users run it; its batch is
`decode_streams`). WER and CER are batch 1's.
Writes bench/results/asr_runtimes.json and .md.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from narvox.bundle import read_bundle
from narvox.data import read_data_dir
from narvox.eval.wer import error_rates
from narvox.export.quantize import quantize_bundle
from narvox.runtime import OnnxASR


def narvox_runtime(bundle, threads: int):
    asr = OnnxASR(bundle, num_threads=threads)
    return lambda batch: [asr.text(ids) for ids, _ in asr.recognize([asr.frontend(a) for a in batch])]


def sherpa_runtime(bundle, threads: int):
    import sherpa_onnx
    b = read_bundle(bundle)
    model, tokens = str(b.file("model")), str(b.file("tokens"))
    if b.kind == "ctc":
        rec = sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model=model, tokens=tokens, num_threads=threads)
    elif b.kind == "paraformer":
        rec = sherpa_onnx.OfflineRecognizer.from_paraformer(paraformer=model, tokens=tokens, num_threads=threads)
    else:
        return None

    def transcribe(batch):
        streams = [rec.create_stream() for _ in batch]
        for stream, audio in zip(streams, batch):
            stream.accept_waveform(16000, audio)
        rec.decode_streams(streams)
        return [" ".join(s.result.text.split()) for s in streams]  # sherpa-onnx's own text
    return transcribe


def timed(transcribe, audio: list, batch_size: int) -> tuple[list[str], float]:
    """Texts in the order of `audio` and the seconds spent; batches take the longest first."""
    order = sorted(range(len(audio)), key=lambda i: -len(audio[i]))
    transcribe(audio[:3])  # warm-up
    texts = [""] * len(audio)
    start = time.perf_counter()
    for i in range(0, len(order), batch_size):
        batch = order[i:i + batch_size]
        for j, text in zip(batch, transcribe([audio[k] for k in batch])):
            texts[j] = text
    return texts, time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundles", nargs="+", default=["ctc", "paraformer"], help="bundle dirs or shipped names")
    p.add_argument("--data", type=Path, required=True, help="a data directory (test set)")
    p.add_argument("--max-utts", type=int, default=300)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    data = read_data_dir(args.data)
    utts = data.utt_ids[:args.max_utts]
    audio = [data.load_audio(u, 16000)[0] for u in utts]
    refs = [data.text[u] for u in utts]
    seconds = sum(len(a) for a in audio) / 16000
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.bundles:
            bundle = read_bundle(name, family="asr")
            int8 = quantize_bundle(bundle.path, Path(tmp) / f"{bundle.path.name}_int8")
            runtimes = {"narvox.runtime": narvox_runtime(bundle, args.threads),
                        "sherpa-onnx": sherpa_runtime(bundle, args.threads),
                        "narvox.runtime int8": narvox_runtime(int8, args.threads)}
            ours = None
            for runtime, transcribe in runtimes.items():
                if transcribe is None:
                    continue
                texts, spent = timed(transcribe, audio, 1)
                _, spent16 = timed(transcribe, audio, 16)
                ours = ours or texts
                rates = error_rates(refs, texts)
                row = {"bundle": str(name), "kind": bundle.kind, "runtime": runtime, "set": args.data.name,
                       "utterances": len(utts), "audio_seconds": seconds, "threads": args.threads,
                       "wer": rates.wer, "cer": rates.cer, "rtf": spent / seconds, "rtf_batch16": spent16 / seconds,
                       "same_as_narvox": sum(a == b for a, b in zip(texts, ours)),
                       "graph_bytes": sum((Path(int8 if "int8" in runtime else bundle.path) / g).stat().st_size
                                          for g in bundle.graphs)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "asr_runtimes.json").write_text(json.dumps(rows, indent=2))
    (args.out / "asr_runtimes.md").write_text(markdown(rows))
    print(markdown(rows))


def markdown(rows: list[dict]) -> str:
    lines = ["| bundle | runtime | WER % | CER % | RTF batch 1 / 16 | speed vs narvox.runtime, batch 1 / 16 | "
             "transcripts as narvox.runtime | graph MB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = next(x for x in rows if x["bundle"] == r["bundle"] and x["runtime"] == "narvox.runtime")
        lines.append(f"| {r['bundle']} | {r['runtime']} | {100 * r['wer']:.2f} | {100 * r['cer']:.2f} | {r['rtf']:.4f} / {r['rtf_batch16']:.4f} | "
                     f"{base['rtf'] / r['rtf']:.2f}x / {base['rtf_batch16'] / r['rtf_batch16']:.2f}x | {r['same_as_narvox']} of {r['utterances']} | "
                     f"{r['graph_bytes'] / 1e6:.1f} |")
    r0 = rows[0]
    return (f"{r0['set']}, {r0['utterances']} utterances ({r0['audio_seconds']:.0f} s), {r0['threads']} threads, "
            "WER and CER at batch 1.\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
