"""Codec benchmark: bitrate, encode/decode real-time factor (PyTorch and ONNX Runtime) and
quality (mel distance, SI-SDR, STOI, PESQ, ASR intelligibility) at every bitrate the codec serves.

  python bench/codec.py --codec narvox/pretrained/codec/narvox \
      --data egs/synth_en/codec/data/test_unseen_voice --threads 2

RTF: each utterance encoded and decoded alone (batch 1) at full depth, audio already in memory;
time / audio duration, summed over `--rtf-utts` utterances after one warm-up call.
Quality: narvox.recipes.codec_eval over the whole set (ONNX Runtime), judged by narvox's CTC ASR.
Writes bench/results/codec.json, codec.md and codec_spectrogram.png (one utterance, original vs
decoded at the highest and a low bitrate).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from narvox.data import read_data_dir
from narvox.recipes.codec_eval import evaluate, open_codec, quality_table, resynthesize


def rtf(codec, wavs: list[np.ndarray]) -> tuple[float, float]:
    """(encode RTF, decode RTF) at batch 1."""
    codes = np.asarray(codec.encode(wavs[0][None]))
    codec.decode(codes)  # warm-up
    t_enc = t_dec = 0.0
    for w in wavs:
        start = time.perf_counter()
        codes = codec.encode(w[None])
        t_enc += time.perf_counter() - start
        start = time.perf_counter()
        codec.decode(codes)
        t_dec += time.perf_counter() - start
    seconds = sum(len(w) for w in wavs) / codec.sample_rate
    return t_enc / seconds, t_dec / seconds


def plot(codec, wav: np.ndarray, depths: list[int], utt: str, path: Path) -> None:
    import librosa
    import librosa.display
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    decoded = resynthesize(codec, [wav], depths)
    rows = [("original", wav)] + [(f"{d} codebooks ({d * codec.frame_rate * np.log2(codec.codebook_size) / 1000:g} kbps)",
                                   decoded[d][0]) for d in depths]
    fig, axes = plt.subplots(len(rows), 1, figsize=(10, 2.6 * len(rows)), sharex=True)
    for ax, (title, audio) in zip(axes, rows):
        mel = librosa.feature.melspectrogram(y=audio, sr=codec.sample_rate, n_fft=1024, hop_length=160, n_mels=80)
        librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=codec.sample_rate, hop_length=160,
                                 x_axis="time", y_axis="mel", ax=ax, vmin=-80, vmax=0)
        ax.set_title(title)
    fig.suptitle(f"{utt}: narvox codec")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown(result: dict) -> str:
    s = result["speed"]
    lines = [f"Codec `{result['codec']['codec']}` ({result['codec']['weights']}), "
             f"{result['codec']['sample_rate']} Hz, {result['codec']['frame_rate']:g} frames/s; "
             f"{result['data']}; {result['threads']} threads.", "",
             "Speed (batch 1, full depth, first {} utterances, {:.1f} s of audio):".format(s["utterances"], s["seconds"]),
             "", "| runtime | encode RTF | decode RTF | encode + decode RTF |", "|---|---|---|---|"]
    for name in ("pytorch", "onnxruntime"):
        e, d = s[name]["encode"], s[name]["decode"]
        lines.append(f"| {name} | {e:.4f} | {d:.4f} | {e + d:.4f} |")
    lines += ["", f"ONNX Runtime speed-up over PyTorch (encode + decode): {s['onnx_speedup']:.2f}x", "",
              f"Quality ({result['rows'][0]['utterances']} utterances, ONNX Runtime; ASR judge: "
              f"narvox {result['asr']}):", "", *quality_table(result["rows"])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codec", type=Path, default=Path("narvox/pretrained/codec/narvox"))
    p.add_argument("--data", type=Path, default=Path("egs/synth_en/corpus/full/test_unseen_voice"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rtf-utts", type=int, default=60)
    p.add_argument("--max-utts", type=int, help="quality on the first N utterances (default: all)")
    p.add_argument("--asr", default="ctc", help="narvox ASR model judging intelligibility; 'none' to skip")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    data = read_data_dir(args.data)
    speed = {}
    for name, runtime in (("pytorch", "torch"), ("onnxruntime", "onnx")):
        codec = open_codec(args.codec, runtime, args.threads)
        wavs = [data.load_audio(u, codec.sample_rate)[0] for u in data.utt_ids[: args.rtf_utts]]
        enc, dec = rtf(codec, wavs)
        speed[name] = {"encode": enc, "decode": dec}
        print(name, speed[name], flush=True)
    speed.update(utterances=len(wavs), seconds=sum(len(w) for w in wavs) / codec.sample_rate,
                 onnx_speedup=sum(speed["pytorch"].values()) / sum(speed["onnxruntime"].values()))
    asr = None if args.asr == "none" else args.asr
    result = evaluate(args.codec, args.data, asr_model=asr, max_utts=args.max_utts, num_threads=args.threads)
    result.update(speed=speed, threads=args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "codec.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "codec.md").write_text(markdown(result))
    utt = data.utt_ids[0]
    plot(codec, data.load_audio(utt, codec.sample_rate)[0], [codec.max_codebooks, 4], utt,
         args.out / "codec_spectrogram.png")
    print(markdown(result))


if __name__ == "__main__":
    main()
