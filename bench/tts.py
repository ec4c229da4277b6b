"""TTS benchmark of one or more systems side by side, on the same sentences and prompts:
intelligibility (two ASR judges, synthesized vs real recordings of the same sentences by the same
voices), speaker similarity, robustness, and speed (real-time factor on PyTorch and ONNX Runtime
at batch 1 and 8, forward passes per second of audio; for VALL-E, the KV cache against
recomputing the sequence).

  python bench/tts.py --bundles narvox/pretrained/tts/ar --models egs/synth_en/tts/exp/valle_aligned/model \
      --data egs/synth_en/corpus/full/test_seen --zero-shot egs/synth_en/corpus/full/test_unseen_voice

`--models` pairs each bundle with its trained model directory for the PyTorch speed ('-': none);
`--refiners` a pseudo-AR bundle with a masked bundle that refines for it (PALLE's two models;
'-': the pseudo-AR model refines itself), so a bundle may be listed twice, once per way.
Quality: narvox.recipes.tts_eval on ONNX Runtime (what ships), prompts from other utterances of
the same speaker (test_seen: seen voices; --zero-shot: voices never trained on). Speed: the first
`--speed-utts` sentences, their lengths imposed from the real recordings (so a model's own
durations do not change the workload), generation + codec decoding, after one warm-up batch.
Masked and pseudo-AR systems are also judged at several --step-settings (passes per codebook
level); pseudo-AR systems also stream a 10 s sentence (time to first audio, chunk cadence,
seams). Writes bench/results/tts.json, tts.md, tts_spectrogram.png, tts_tradeoff.png (judge WER
against RTF, a point per system and step setting) and a WAV sample per system and test set
(tts_samples/, first 4 s of each: under 1 MB in all). `--speed-only` measures the speed rows
alone (minutes, not an hour) into tts_speed.json and tts_speed.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import re
import time
from pathlib import Path

import numpy as np

from narvox.audio import write_audio
from narvox.codecs.dump import CodesFile, codes_path
from narvox.data import read_data_dir
from narvox.recipes.tts_eval import (choose_prompts, default_options, evaluate, markdown as quality_markdown,
                                     open_tts, synthesize)
from narvox.tts import pseudo_ar
from narvox.tts.decoding import GenerateOptions


class CountingGraphs:
    """A model's graphs, counting the calls generation makes."""

    def __init__(self, graphs):
        self.graphs, self.calls = graphs, 0
        for name in ("conditioning", "n_codebooks", "codebook_size", "d_model", "lookahead"):
            setattr(self, name, getattr(graphs, name, None))

    def __getattr__(self, name):
        call = getattr(self.graphs, name)
        if name not in ("encode", "lm", "residual", "levels"):
            return call

        def counted(*args):
            self.calls += 1
            return call(*args)
        return counted


def codec_seconds(tts, items, frames: list[int], options: GenerateOptions) -> float:
    """Seconds the codec takes to decode the items' codes one at a time: a part of every RTF,
    the same whatever the backend (and the same codec graph under PyTorch and ONNX Runtime)."""
    codes = [tts.generate([it.phones], [it.prompt], [it.prompt_phones], dataclasses.replace(options, durations=(f,)))[0]
             for it, f in zip(items, frames)]
    tts.decode(codes[:1])  # warm-up
    start = time.perf_counter()
    for c in codes:
        tts.decode([c])
    return time.perf_counter() - start


def speed(tts, items, frames: list[int], batch_sizes=(1, 8), options: GenerateOptions | None = None) -> dict:
    """RTF per batch size (generation and codec decoding; of that, the codec's at batch 1), and
    forward passes per second of audio."""
    out, options = {}, options or default_options(tts)
    synthesize(tts, items[:batch_sizes[-1]], options, batch_sizes[-1], frames[:batch_sizes[-1]])  # warm-up
    seconds = sum(frames) * tts.codec.hop_length / tts.codec.sample_rate
    for b in batch_sizes:
        _, took = synthesize(tts, items, options, b, frames)
        out[f"rtf_batch{b}"] = took / seconds
    counting = CountingGraphs(tts.graphs)
    refiner = None if tts.refiner is None else CountingGraphs(tts.refiner)
    loop = type(tts.model).loop if hasattr(tts, "model") else tts.graphs.generate
    if refiner is not None:
        loop = functools.partial(pseudo_ar.generate, refiner=refiner)
    for i in range(len(items)):
        loop(counting, [items[i].phones], [items[i].prompt], [items[i].prompt_phones],
             dataclasses.replace(options, durations=(frames[i],)))
    out["forward_passes_per_second"] = (counting.calls + (refiner.calls if refiner else 0)) / seconds
    out["codec_rtf_batch1"] = codec_seconds(tts, items, frames, options) / seconds
    out["audio_seconds"] = seconds
    return out


def cache_versus_recompute(tts, lengths=(50, 150, 300, 500), repeats: int = 5) -> list[dict]:
    """Milliseconds of one codebook-1 step after `t` frames (and the model's voice prompt): with
    the KV cache (one new slot) and recomputing the whole sequence (every slot again), on ONNX
    Runtime."""
    rows = []
    d, prompt = tts.d_model, round(tts.prompt_seconds * tts.codec.frame_rate)
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


def streaming(tts, item, seconds: float = 10.0) -> dict:
    """A pseudo-AR stream of `seconds` of speech (the item's sentence at that imposed length) on
    ONNX Runtime: time to the first audio chunk and between chunks, and the largest difference of
    the joined chunks from decoding the same codes at once (a seam would show there)."""
    from narvox.runtime.codec import StreamingDecoder
    frames = round(seconds * tts.codec.frame_rate)
    options = dataclasses.replace(default_options(tts), durations=(frames,))
    decoder, chunks, times = StreamingDecoder(tts.codec), [], []
    start = time.perf_counter()
    for codes, final in tts.stream([item.phones], [item.prompt], [item.prompt_phones], options):
        chunk = decoder.push(codes[0, :, :final[0]], final=final[0] == frames)
        if len(chunk):
            times.append(time.perf_counter() - start)
            chunks.append(chunk)
    whole = tts.decode([codes[0]])[0]
    return {"audio_seconds": seconds, "first_audio_s": times[0], "all_audio_s": times[-1], "chunks": len(chunks),
            "mean_chunk_interval_s": float(np.mean(np.diff(times))) if len(times) > 1 else 0.0,
            "max_abs_difference": float(np.abs(np.concatenate(chunks) - whole).max())}


def plot(panels: list[tuple[str, np.ndarray]], sr: int, title: str, path: Path) -> None:
    """Mel spectrograms, one panel per (name, audio)."""
    import librosa
    import librosa.display
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.6 * len(panels)), sharex=True, squeeze=False)
    for ax, (name, audio) in zip(axes[:, 0], panels):
        mel = librosa.feature.melspectrogram(y=audio, sr=sr, n_fft=1024, hop_length=160, n_mels=80)
        librosa.display.specshow(librosa.power_to_db(mel, ref=np.max), sr=sr, hop_length=160, x_axis="time",
                                 y_axis="mel", ax=ax, vmin=-80, vmax=0)
        ax.set_title(name)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def step_curve(bundle: Path, refiner: Path | None, tts, items, frames, args) -> list[dict]:
    """A masked system at each --step-settings (passes per codebook level), a pseudo-AR one at
    each --spans (its share of the target per step: 1/span passes): ctc judge WER/CER on the first
    --curve-utts seen-voice sentences, and speed at batch 1."""
    settings = [{"span": s} for s in args.spans] if tts.streams else [{"steps": s} for s in args.step_settings]
    rows = []
    for setting in settings:
        options = dataclasses.replace(default_options(tts), **setting)
        quality, _ = evaluate(bundle, args.data, max_utts=args.curve_utts, judges=("ctc",), similarity=False,
                              options=options, num_threads=args.threads, refiner=refiner)
        s = speed(tts, items, frames, batch_sizes=(1,), options=options)
        j = quality["judges"]["ctc"]
        label = f"span {setting['span']}" if "span" in setting else ",".join(map(str, setting["steps"]))
        rows.append({"setting": label, "wer": j["wer_tts"], "cer": j["cer_tts"], "wer_real": j["wer_real"],
                     "rtf_batch1": s["rtf_batch1"], "forward_passes_per_second": s["forward_passes_per_second"]})
    return rows


def plot_tradeoff(systems: dict, path: Path) -> None:
    """Judge (ctc) WER against ONNX Runtime RTF at batch 1: a point per system and step setting."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in systems.items():
        q = r["quality"]["seen voices"]["judges"].get("ctc")
        points = [(row["rtf_batch1"], row["wer"], row["setting"]) for row in r.get("step_curve", [])]
        if q and not points:
            points = [(r["speed"]["onnxruntime"]["rtf_batch1"], q["wer_tts"], "")]
        xs, ys, labels = zip(*points) if points else ((), (), ())
        ax.plot(xs, ys, "o-", label=name)
        for x, y, label in points:
            ax.annotate(label, (x, y), fontsize=7)
    ax.set_xlabel("real-time factor, ONNX Runtime, batch 1")
    ax.set_ylabel("ctc judge WER %")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def system_name(bundle: Path, refiner: Path | None = None) -> str:
    """<bundle kind> (<its directory, or the experiment's for a recipe's exp/<name>/onnx>)
    [+ refiner <the same of the refiner>]: what the tables call a system."""
    from narvox.bundle import read_bundle
    label = lambda b: f"{read_bundle(b).kind} ({b.parent.name if b.name == 'onnx' else b.name})"
    return label(bundle) + ("" if refiner is None else f" + refiner {label(refiner)}")


def markdown(result: dict) -> str:
    systems = result["systems"]
    lines = [f"TTS benchmark, {result['threads']} threads: {', '.join(systems)}.", ""]
    if any(r["quality"] for r in systems.values()):
        lines += ["| system | test set | " + " | ".join(f"{j} WER ratio | {j} CER ratio" for j in result["judges"]) +
                  " | similarity ratio | long / short / empty % |",
                  "|---|---|" + "---|---|" * len(result["judges"]) + "---|---|"]
    for name, r in systems.items():
        for test_set, q in r["quality"].items():
            cells = [f"{q['judges'][j]['wer_ratio']:.2f} | {q['judges'][j]['cer_ratio']:.2f}" for j in result["judges"]]
            sim = f"{q['similarity']['ratio']:.3f}" if "similarity" in q else "-"
            rob = q["robustness"]
            lines.append(f"| {name} | {test_set} | " + " | ".join(cells) + f" | {sim} | {100 * rob['too_long']:.1f} / "
                         f"{100 * rob['too_short']:.1f} / {100 * rob['empty']:.1f} |")
    if any(r["quality"] for r in systems.values()):
        lines += ["", "Ratios: the judge's error rate on the synthesized speech over its error rate on the real "
                  "recordings of the same sentences; similarity: Resemblyzer cosine to the prompt, over the real "
                  "recording's.", ""]
    lines += ["| system | runtime | RTF batch 1 | of which codec decoding | RTF batch 8 | forward passes / s of audio | "
              "ONNX speed-up (batch 1) |", "|---|---|---|---|---|---|---|"]
    for name, r in systems.items():
        s = r["speed"]
        for runtime in ("pytorch", "onnxruntime"):
            if runtime in s:
                x = s[runtime]
                up = f"{s['onnx_speedup']:.2f}x" if runtime == "onnxruntime" and "onnx_speedup" in s else ""
                codec = f"{x['codec_rtf_batch1']:.3f}" if "codec_rtf_batch1" in x else "-"
                lines.append(f"| {name} | {runtime} | {x['rtf_batch1']:.3f} | {codec} | {x['rtf_batch8']:.3f} | "
                             f"{x['forward_passes_per_second']:.1f} | {up} |")
    first = next(iter(systems.values()))["speed"]
    lines += ["", f"Speed: {first['utterances']} sentences, {first['onnxruntime']['audio_seconds']:.1f} s of audio, "
                  "at the lengths of the real recordings, generation and codec decoding."]
    for name, r in systems.items():
        if r.get("cache"):
            lines += ["", f"{name}: codebook-1 step after t frames (ONNX Runtime), KV cache vs recomputing the sequence",
                      "", "| frames | cached ms | recomputed ms | speed-up |", "|---|---|---|---|"]
            lines += [f"| {c['frames']} | {c['cached_ms']:.2f} | {c['recomputed_ms']:.2f} | {c['speedup']:.1f}x |"
                      for c in r["cache"]]
    streams = {name: r["streaming"] for name, r in systems.items() if "streaming" in r}
    if streams:
        lines += ["", "Streaming (ONNX Runtime): a 10 s sentence, time to the first audio chunk and between chunks; "
                      "the joined chunks against decoding the same codes at once", "",
                  "| system | first audio s | all audio s | chunks | s between chunks | max abs difference |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {name} | {s['first_audio_s']:.3f} | {s['all_audio_s']:.3f} | {s['chunks']} | "
                  f"{s['mean_chunk_interval_s']:.3f} | {s['max_abs_difference']:.2e} |" for name, s in streams.items()]
    for name, r in systems.items():
        if r.get("step_curve"):
            lines += ["", f"{name}: passes per codebook level (masked) or share of the target per step (pseudo-AR) "
                          "against quality (ctc judge, seen voices) and speed", "",
                      "| setting | WER % | CER % | WER ratio | RTF batch 1 | forward passes / s of audio |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {c['setting']} | {c['wer']:.1f} | {c['cer']:.1f} | "
                      f"{c['wer'] / max(c['wer_real'], 1e-9):.2f} | {c['rtf_batch1']:.3f} | "
                      f"{c['forward_passes_per_second']:.1f} |" for c in r["step_curve"]]
    for name, r in systems.items():
        for test_set, q in r["quality"].items():
            lines += ["", f"### {name}, {test_set}", "", quality_markdown(q)]
    return "\n".join(lines) + "\n"


def bench_system(bundle: Path, model: Path | None, refiner: Path | None, args) -> tuple[dict, dict]:
    """(the system's results, test set -> its audio)."""
    result, audio = {"bundle": str(bundle), "model": str(model) if model else None,
                     "refiner": str(refiner) if refiner else None, "quality": {}}, {}
    for test_set, data_dir in (("seen voices", args.data), ("zero-shot voices", args.zero_shot)):
        if data_dir is not None and not args.speed_only:
            result["quality"][test_set], audio[test_set] = evaluate(
                bundle, data_dir, max_utts=args.max_utts, judges=tuple(args.judges),
                num_threads=args.threads, refiner=refiner)
    tts = open_tts(bundle, num_threads=args.threads, refiner=refiner)
    data = read_data_dir(args.data)
    codes = CodesFile(codes_path(args.data, tts.codec.name))
    items, _ = choose_prompts(data, codes, tts.tokenizer.table, tts.conditioning == "prefix", tts.prompt_seconds)
    items = items[:args.speed_utts]
    frames = [codes[it.utt].shape[1] for it in items]
    s = {"utterances": len(items), "onnxruntime": speed(tts, items, frames)}
    if model and refiner is None:  # the bundle's sampling on both (a model directory has none of its own)
        s["pytorch"] = speed(open_tts(model, num_threads=args.threads), items, frames, options=default_options(tts))
        s["onnx_speedup"] = s["pytorch"]["rtf_batch1"] / s["onnxruntime"]["rtf_batch1"]
    result["speed"] = s
    if hasattr(tts.graphs, "lm"):  # VALL-E's codebook-1 stage: what the KV cache is for
        result["cache"] = cache_versus_recompute(tts)
    elif args.step_settings and not args.speed_only:  # masked and pseudo-AR: how quality trades against passes
        result["step_curve"] = step_curve(bundle, refiner, tts, items, frames, args)
    if tts.streams:
        result["streaming"] = streaming(tts, items[0])
    return result, audio


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundles", type=Path, nargs="+", default=[Path("narvox/pretrained/tts/ar")])
    p.add_argument("--models", nargs="*", default=[],
                   help="per bundle, its trained model directory for the PyTorch speed, or '-'")
    p.add_argument("--refiners", nargs="*", default=[],
                   help="per bundle, a masked bundle refining for a pseudo-AR one, or '-'")
    p.add_argument("--data", type=Path, default=Path("egs/synth_en/corpus/full/test_seen"))
    p.add_argument("--zero-shot", type=Path, help="a data dir of voices never trained on")
    p.add_argument("--max-utts", type=int, default=100)
    p.add_argument("--speed-utts", type=int, default=16)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--judges", nargs="*", default=["ctc", "pocketsphinx"])
    p.add_argument("--step-settings", nargs="*", type=lambda s: tuple(int(x) for x in s.split(",")),
                   default=[(4, 1, 1), (8, 2, 1), (16, 4, 2), (32, 8, 4)],
                   help="masked systems: passes per codebook level to trade off, e.g. 16,4,2")
    p.add_argument("--spans", nargs="*", type=float, default=[0.2, 0.15, 0.1],
                   help="pseudo-AR systems: shares of the target per step to trade off")
    p.add_argument("--curve-utts", type=int, default=50, help="sentences judged per step setting")
    p.add_argument("--speed-only", action="store_true",
                   help="only the speed rows (RTF, codec share, passes, KV cache, streaming), in tts_speed.json/.md")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args(argv)
    if max(len(args.models), len(args.refiners)) > len(args.bundles):
        p.error("more --models or --refiners than --bundles")
    pairs = lambda given: [None if m == "-" else Path(m) for m in given] + [None] * (len(args.bundles) - len(given))
    models, refiners = pairs(args.models), pairs(args.refiners)
    args.out.mkdir(parents=True, exist_ok=True)
    samples = args.out / "tts_samples"
    samples.mkdir(exist_ok=True)
    result = {"threads": args.threads, "judges": args.judges, "systems": {}}
    data = read_data_dir(args.data)
    panels = []
    names = [system_name(b, r) for b, r in zip(args.bundles, refiners)]
    if len(set(names)) < len(names):
        p.error(f"two bundles would share a name in the tables: {names}")
    stem = "tts_speed" if args.speed_only else "tts"
    for bundle, model, refiner, name in zip(args.bundles, models, refiners, names):
        result["systems"][name], audio = bench_system(bundle, model, refiner, args)
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")  # what is done so far
        if args.speed_only:
            continue
        for test_set, wavs in audio.items():  # the first 4 s of the first sentence, 16-bit
            stem = re.sub(r"\W+", "_", name).strip("_")
            write_audio(samples / f"{stem}_{test_set.split()[0]}.wav", wavs[0][:4 * 16000], 16000)
        panels.append((name, audio["seen voices"][0]))
    if args.speed_only:
        (args.out / f"{stem}.md").write_text(markdown(result))
        print(markdown(result))
        return
    # evaluate() prompts every utterance whose speaker has another one: the first such is judged first
    utt = next(u for u in data.utt_ids if data.spk2utt[data.utt2spk[u]] != [u])
    plot([("real recording", data.load_audio(utt, 16000)[0]), *panels], 16000, f"{utt}: {data.text[utt]}",
         args.out / "tts_spectrogram.png")
    plot_tradeoff(result["systems"], args.out / "tts_tradeoff.png")
    (args.out / "tts.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "tts.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
