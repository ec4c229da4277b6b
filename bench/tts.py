"""TTS benchmark: intelligibility (two ASR judges, synthesized vs real recordings of the same
sentences by the same voices), speaker similarity, robustness, and speed (real-time factor on
PyTorch and ONNX Runtime at batch 1 and 8, forward passes per second of audio, the KV cache
against recomputing the sequence).

  python bench/tts.py --bundle narvox/pretrained/tts/ar --model egs/synth_en/tts/exp/valle_aligned/model \
      --data egs/synth_en/corpus/full/test_seen --zero-shot egs/synth_en/corpus/full/test_unseen_voice

Quality: narvox.recipes.tts_eval on ONNX Runtime (what ships), prompts from other utterances of
the same speaker (test_seen: seen voices; --zero-shot: voices never trained on). Speed: the first
`--speed-utts` sentences, their lengths imposed from the real recordings (so a model's own
durations do not change the workload), generation + codec decoding, after one warm-up batch.
Writes bench/results/tts.json, tts.md, tts_spectrogram.png and a few WAV samples (tts_samples/).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from narvox.audio import write_audio
from narvox.codecs.dump import CodesFile, codes_path
from narvox.data import read_data_dir
from narvox.recipes.tts_eval import choose_prompts, evaluate, markdown as quality_markdown, open_tts, synthesize
from narvox.tts.decoding import GenerateOptions
from narvox.tts.sampling import SamplingOptions

SAMPLING = GenerateOptions(sampling=SamplingOptions(temperature=1.0, top_k=50), seed=0)


class CountingGraphs:
    """A model's graphs, counting the calls generation makes."""

    def __init__(self, graphs):
        self.graphs, self.calls = graphs, 0
        for name in ("conditioning", "n_codebooks", "codebook_size", "d_model"):
            setattr(self, name, getattr(graphs, name, None))

    def __getattr__(self, name):
        call = getattr(self.graphs, name)
        if name not in ("encode", "lm", "residual", "levels"):
            return call

        def counted(*args):
            self.calls += 1
            return call(*args)
        return counted


def speed(tts, items, frames: list[int], batch_sizes=(1, 8)) -> dict:
    """RTF per batch size, and forward passes per second of audio."""
    out = {}
    synthesize(tts, items[:batch_sizes[-1]], SAMPLING, batch_sizes[-1], frames[:batch_sizes[-1]])  # warm-up
    seconds = sum(frames) * tts.codec.hop_length / tts.codec.sample_rate
    for b in batch_sizes:
        _, took = synthesize(tts, items, SAMPLING, b, frames)
        out[f"rtf_batch{b}"] = took / seconds
    counting = CountingGraphs(tts.graphs)
    loop = type(tts.model).loop if hasattr(tts, "model") else tts.graphs.generate
    for i in range(len(items)):
        loop(counting, [items[i].phones], [items[i].prompt], [items[i].prompt_phones],
             GenerateOptions(sampling=SAMPLING.sampling, seed=0, durations=(frames[i],)))
    out["forward_passes_per_second"] = counting.calls / seconds
    out["audio_seconds"] = seconds
    return out


def cache_versus_recompute(tts, lengths=(50, 150, 300, 500), repeats: int = 5) -> list[dict]:
    """Milliseconds of one codebook-1 step after `t` frames (3 s prompt): with the KV cache (one
    new slot) and recomputing the whole sequence (every slot again), on ONNX Runtime."""
    rows = []
    d, prompt = tts.d_model, 150
    for t in lengths:
        n = prompt + t
        tokens = np.zeros((1, n), dtype=np.int64)
        zeros = np.zeros((1, n, d), dtype=np.float32)
        no = np.zeros((1, n), dtype=bool)
        positions = np.arange(n)[None]
        valid = np.ones((1, n), dtype=bool)
        _, cache = tts.graphs.lm(tokens[:, :-1], zeros[:, :-1], zeros[:, :-1], no[:, :-1], no[:, :-1], positions[:, :-1],
                          valid[:, :-1], no[:, :-1], None)
        timing = {}
        for name, call in (("cached", lambda: tts.graphs.lm(tokens[:, -1:], zeros[:, -1:], zeros[:, -1:], no[:, -1:],
                                                     no[:, -1:], positions[:, -1:], valid, no, cache)),
                           ("recomputed", lambda: tts.graphs.lm(tokens, zeros, zeros, no, no, positions, valid, no, None))):
            call()
            start = time.perf_counter()
            for _ in range(repeats):
                call()
            timing[name] = 1000 * (time.perf_counter() - start) / repeats
        rows.append({"frames": t, "cached_ms": timing["cached"], "recomputed_ms": timing["recomputed"],
                     "speedup": timing["recomputed"] / timing["cached"]})
    return rows


def plot(real: np.ndarray, synthesized: np.ndarray, sr: int, title: str, path: Path) -> None:
    import librosa
    import librosa.display
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.2), sharex=True)
    for ax, (name, audio) in zip(axes, (("real recording", real), ("narvox TTS", synthesized))):
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=1024, hop_length=160, n_mels=80)
        librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sr, hop_length=160, x_axis="time",
                                 y_axis="mel", ax=ax, vmin=-80, vmax=0)
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def markdown(result: dict) -> str:
    lines = [f"TTS benchmark: bundle `{result['bundle']}`, model dir `{result['model']}`, {result['threads']} threads.", ""]
    for name, q in result["quality"].items():
        lines += [f"### {name}", "", quality_markdown(q)]
    s = result["speed"]
    lines += ["### Speed", "", f"{s['utterances']} sentences, {s['onnxruntime']['audio_seconds']:.1f} s of audio, "
              "lengths of the real recordings.", "",
              "| runtime | RTF batch 1 | RTF batch 8 | forward passes / s of audio |", "|---|---|---|---|"]
    for name in ("pytorch", "onnxruntime"):
        if name in s:
            r = s[name]
            lines.append(f"| {name} | {r['rtf_batch1']:.3f} | {r['rtf_batch8']:.3f} | {r['forward_passes_per_second']:.1f} |")
    if "pytorch" in s:
        lines += ["", f"ONNX Runtime speed-up over PyTorch at batch 1: {s['onnx_speedup']:.2f}x"]
    lines += ["", "Codebook-1 step after t frames (ONNX Runtime): KV cache vs recomputing the sequence", "",
              "| frames | cached ms | recomputed ms | speed-up |", "|---|---|---|---|"]
    for r in result["cache"]:
        lines.append(f"| {r['frames']} | {r['cached_ms']:.2f} | {r['recomputed_ms']:.2f} | {r['speedup']:.1f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", type=Path, default=Path("narvox/pretrained/tts/ar"))
    p.add_argument("--model", type=Path, help="the trained model directory of the bundle (PyTorch speed)")
    p.add_argument("--data", type=Path, default=Path("egs/synth_en/corpus/full/test_seen"))
    p.add_argument("--zero-shot", type=Path, help="a data dir of voices never trained on")
    p.add_argument("--max-utts", type=int, default=100)
    p.add_argument("--speed-utts", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--judges", nargs="*", default=["ctc", "pocketsphinx"])
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"bundle": str(args.bundle), "model": str(args.model), "threads": args.threads, "quality": {}}
    samples = args.out / "tts_samples"
    samples.mkdir(exist_ok=True)
    for name, data_dir in (("seen voices", args.data), ("zero-shot voices", args.zero_shot)):
        if data_dir is None:
            continue
        quality, audio = evaluate(args.bundle, data_dir, max_utts=args.max_utts, judges=tuple(args.judges),
                                  options=SAMPLING, num_threads=args.threads)
        result["quality"][name] = quality
        data = read_data_dir(data_dir)
        utts = [u for u in data.utt_ids if data.spk2utt[data.utt2spk[u]] != [u]][:len(audio)]
        for k in range(2):  # a few seconds of each, 16-bit: well under 1 MB in all
            write_audio(samples / f"{name.split()[0]}_{k}_{utts[k]}.wav", audio[k], 16000)
        if name == "seen voices":
            plot(data.load_audio(utts[0], 16000)[0], audio[0], 16000, f"{utts[0]}: {data.text[utts[0]]}",
                 args.out / "tts_spectrogram.png")
    tts = open_tts(args.bundle, num_threads=args.threads)
    data = read_data_dir(args.data)
    codes = CodesFile(codes_path(args.data, tts.codec.name))
    items, _ = choose_prompts(data, codes, tts.tokenizer.table, tts.conditioning == "prefix", tts.prompt_seconds)
    items = items[:args.speed_utts]
    frames = [codes[it.utt].shape[1] for it in items]
    s = {"utterances": len(items), "onnxruntime": speed(tts, items, frames)}
    if args.model:
        s["pytorch"] = speed(open_tts(args.model, num_threads=args.threads), items, frames)
        s["onnx_speedup"] = s["pytorch"]["rtf_batch1"] / s["onnxruntime"]["rtf_batch1"]
    result["speed"] = s
    result["cache"] = cache_versus_recompute(tts)
    (args.out / "tts.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "tts.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
