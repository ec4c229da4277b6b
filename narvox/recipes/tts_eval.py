"""Evaluate a TTS model on a data directory: every utterance's text is synthesized in the voice of
ANOTHER utterance of the same speaker (the prompt), then judged against the real recording of the
same sentence by the same voice.

- intelligibility: WER and CER of two judges (narvox's CTC recognizer, and PocketSphinx, which
  owes narvox nothing) on the synthesized audio and on the real recordings; the ratio is the
  figure, as it cancels the judge's own weakness;
- speaker similarity: cosine of Resemblyzer embeddings, prompt vs output, beside prompt vs the real
  recording;
- robustness: outputs longer than 1.5x or shorter than 0.5x the real recording, and empty ones;
- speed: generation real-time factor (model + codec decoder, as run).

    python -m narvox.recipes.tts_eval --model exp/valle_aligned/model --data data/test_seen \
        --out exp/valle_aligned/eval_test_seen [--max-utts 100]
    python -m narvox.recipes.tts_eval --curve exp/valle_aligned --data data/dev --max-utts 30 --judges ctc
        # judge WER/CER of every curve-step*.ckpt against training minutes
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from narvox.codecs.dump import CodesFile, codes_path
from narvox.data.kaldi import DataDir, read_data_dir
from narvox.eval.wer import error_rates
from narvox.text.tokens import TokenTable
from narvox.tts.decoding import GenerateOptions
from narvox.tts.sampling import SamplingOptions

log = logging.getLogger(__name__)
JUDGES = ("ctc", "pocketsphinx")


@dataclass
class Item:
    utt: str
    phones: np.ndarray         # target text's phone ids
    prompt_utt: str
    prompt: np.ndarray         # [Q, P] codes
    prompt_phones: np.ndarray  # the prompt's phone ids (its whole text; empty for a crop)
    prompt_start: int          # first frame of the prompt in its utterance


def choose_prompts(data: DataDir, codes: CodesFile, table: TokenTable, whole_text: bool,
                   prompt_seconds: float, max_seconds: float = 6.0) -> tuple[list[Item], list[str]]:
    """Per utterance, the next utterance of the same speaker (in id order, cyclically) as the
    prompt: its middle `prompt_seconds`, or, when the prompt's text must be given (`whole_text`,
    the prefix conditioning), the next one of at most `max_seconds` whole. Deterministic, so
    every model is judged on the same pairs. Returns the items and the utterances left out because
    their speaker has no other one (the caller reports them)."""
    frame_rate = codes.identity["frame_rate"]
    ids = lambda utt: np.array([table[p] for p in data.extra["text_phones"][utt].split()], dtype=np.int64)
    items, alone = [], []
    for utt in data.utt_ids:
        mates = data.spk2utt[data.utt2spk[utt]]
        if len(mates) < 2:
            alone.append(utt)
            continue
        k = mates.index(utt)
        order = mates[k + 1:] + mates[:k]
        if whole_text:
            fits = [u for u in order if codes[u].shape[1] <= max_seconds * frame_rate]
            other = fits[0] if fits else order[0]
            c = codes[other]
            items.append(Item(utt, ids(utt), other, c, ids(other), 0))
        else:
            other = order[0]
            c = codes[other]
            n = int(prompt_seconds * frame_rate)
            start = max(0, (c.shape[1] - n) // 2)
            items.append(Item(utt, ids(utt), other, c[:, start:start + n], np.zeros(0, dtype=np.int64), start))
    return items, alone


def open_tts(model: str | Path, codec: str = "narvox", num_threads: int = 2, refiner: str | Path | None = None):
    """The synthesizer of a bundle (ONNX Runtime) or a trained model directory (PyTorch), as
    narvox.TTS runs it (`refiner`: see narvox.TTS.from_pretrained)."""
    from narvox.tts.api import TTS
    return TTS.from_pretrained(model, num_threads=num_threads, codec=codec, refiner=refiner).backend


def synthesize(tts, items: list[Item], options: GenerateOptions, batch_size: int = 8,
               durations: list[int] | None = None, stream: bool = False) -> tuple[list[np.ndarray], float]:
    """Audio of every item (batches of similar text length) and the seconds it took.
    `durations`: frames per item, imposed (speed measurements use the real recordings').
    `stream`: the codes a pseudo-AR model streams (every level span by span, no refinement)."""
    order = sorted(range(len(items)), key=lambda i: len(items[i].phones))
    audio: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(items)
    start = time.perf_counter()
    for b in range(0, len(order), batch_size):
        idx = order[b:b + batch_size]
        if durations is not None:
            options = dataclasses.replace(options, durations=tuple(durations[i] for i in idx))
        inputs = ([items[i].phones for i in idx], [items[i].prompt for i in idx], [items[i].prompt_phones for i in idx])
        if stream:
            *_, (streamed, final) = tts.stream(*inputs, options)
            codes = [streamed[k, :, :n] for k, n in enumerate(final)]
        else:
            codes = tts.generate(*inputs, options)
        for i, wav in zip(idx, tts.decode(codes)):
            audio[i] = wav
    return audio, time.perf_counter() - start


@functools.lru_cache(maxsize=4)
def _judge(name: str, num_threads: int):
    """A judge loaded once per process: evaluations and learning curves call it many times."""
    if name == "pocketsphinx":
        from narvox.eval.tts import PocketSphinxJudge
        return PocketSphinxJudge()
    from narvox.asr.api import ASR
    return ASR.from_pretrained(name, num_threads=num_threads)


def judge_texts(judge: str, wavs: list[np.ndarray], sample_rate: int, num_threads: int = 2) -> list[str]:
    batch = [(w if len(w) else np.zeros(sample_rate // 10, dtype=np.float32), sample_rate) for w in wavs]
    model = _judge(judge, num_threads)
    if judge == "pocketsphinx":
        return model.transcribe(batch)
    return [t.text for t in model.transcribe(batch, batch_size=16)]


def default_options(tts, seed: int = 0, sampling: dict | None = None, **fields) -> GenerateOptions:
    """How narvox.TTS generates with this model by default: its bundle's sampling (`sampling`
    over it), a pseudo-AR bundle's span and refinement; `fields` (GenerateOptions') over all."""
    own = {k: getattr(tts, k, None) for k in ("span", "refine_steps")}
    return GenerateOptions(**{"seed": seed, "sampling": SamplingOptions(**{**tts.sampling, **(sampling or {})}),
                              **{k: v for k, v in own.items() if v is not None}, **fields})


def evaluate(model: str | Path, data_dir: str | Path, codec_dir: str = "narvox", max_utts: int | None = None,
             judges: tuple[str, ...] = JUDGES, similarity: bool = True, options: GenerateOptions | None = None,
             num_threads: int = 2, sampling: dict | None = None, seed: int = 0,
             refiner: str | Path | None = None, generate: dict | None = None,
             stream: bool = False) -> tuple[dict, list[np.ndarray]]:
    """Judge a bundle or model directory on a data dir; returns the result and the audio.
    `options` default: `seed`, the sampling narvox.TTS would use (the bundle's, `sampling`
    over it), the pseudo-AR model's own span, and `generate` (other GenerateOptions fields: steps,
    span, refine_steps) over them. `refiner`: a pseudo-AR model's separate refiner
    (narvox.TTS.from_pretrained); `stream`: judge what a pseudo-AR model streams."""
    tts = open_tts(model, codec_dir, num_threads, refiner)
    codec = tts.codec
    data = read_data_dir(data_dir)
    codes = CodesFile(codes_path(data_dir, codec.name))
    codes.check_codec(codec.identity())
    items, alone = choose_prompts(data, codes, tts.tokenizer.table, tts.conditioning == "prefix", tts.prompt_seconds)
    if alone:
        log.warning("%s: left out %d utterances whose speaker has no other one to prompt them (%s)",
                    data_dir, len(alone), ", ".join(alone[:3]))
    if not items:
        raise ValueError(f"{data_dir}: no speaker has two utterances, so nothing can be prompted")
    items = items[:max_utts]
    options = options or default_options(tts, seed, sampling, **(generate or {}))
    sr = codec.sample_rate
    audio, seconds = synthesize(tts, items, options, stream=stream)
    real = [data.load_audio(it.utt, sr)[0] for it in items]
    refs = [data.text[it.utt] for it in items]
    result = {"model": str(model), "refiner": None if refiner is None else str(refiner), "data": str(data_dir), "utterances": len(items), "left_out": len(alone),
              "conditioning": tts.conditioning, "options": repr(options), "stream": stream,
              "rtf": seconds / max(1e-9, sum(len(w) for w in audio) / sr), "judges": {}}
    for judge in judges:
        on_real = error_rates(refs, judge_texts(judge, real, sr, num_threads))
        on_tts = error_rates(refs, judge_texts(judge, audio, sr, num_threads))
        result["judges"][judge] = {"wer_real": 100 * on_real.wer, "cer_real": 100 * on_real.cer,
                                   "wer_tts": 100 * on_tts.wer, "cer_tts": 100 * on_tts.cer,
                                   "wer_ratio": on_tts.wer / max(on_real.wer, 1e-9),
                                   "cer_ratio": on_tts.cer / max(on_real.cer, 1e-9)}
    ratio = np.array([len(t) / max(1, len(r)) for t, r in zip(audio, real)])
    result["robustness"] = {"too_long": float((ratio > 1.5).mean()), "too_short": float((ratio < 0.5).mean()),
                            "empty": float(np.mean([len(t) < sr // 10 for t in audio]))}
    if similarity:
        from narvox.eval.tts import SpeakerSimilarity
        judge = SpeakerSimilarity(num_threads=1)
        hop = codec.hop_length
        prompts = [data.load_audio(it.prompt_utt, sr)[0][it.prompt_start * hop:(it.prompt_start + it.prompt.shape[1]) * hop]
                   for it in items]
        sim_tts = [judge.similarity(p, sr, t, sr) if len(t) > sr // 2 else 0.0 for p, t in zip(prompts, audio)]
        sim_real = [judge.similarity(p, sr, r, sr) for p, r in zip(prompts, real)]
        result["similarity"] = {"tts": float(np.mean(sim_tts)), "real": float(np.mean(sim_real)),
                                "ratio": float(np.mean(sim_tts) / np.mean(sim_real))}
    return result, audio


def markdown(result: dict) -> str:
    lines = [f"TTS {result['model']} ({result['conditioning']}) on {result['data']}, {result['utterances']} "
             f"utterances, each prompted by another utterance of its speaker ({result['left_out']} left out: their "
             f"speaker has no other one); generation RTF {result['rtf']:.3f}", "",
             "| judge | WER real % | WER TTS % | WER ratio | CER real % | CER TTS % | CER ratio |",
             "|---|---|---|---|---|---|---|"]
    for name, j in result["judges"].items():
        lines.append(f"| {name} | {j['wer_real']:.2f} | {j['wer_tts']:.2f} | {j['wer_ratio']:.2f} | "
                     f"{j['cer_real']:.2f} | {j['cer_tts']:.2f} | {j['cer_ratio']:.2f} |")
    r = result["robustness"]
    lines += ["", f"Robustness: {100 * r['too_long']:.1f} % longer than 1.5x the recording, "
                  f"{100 * r['too_short']:.1f} % shorter than 0.5x, {100 * r['empty']:.1f} % empty."]
    if "similarity" in result:
        s = result["similarity"]
        lines.append(f"Speaker similarity (Resemblyzer cosine to the prompt): TTS {s['tts']:.3f}, real recording "
                     f"{s['real']:.3f}, ratio {s['ratio']:.3f}.")
    return "\n".join(lines) + "\n"


def learning_curve(exp_dir: str | Path, data_dir: str | Path, codec_dir: str = "narvox", max_utts: int = 30,
                   judges: tuple[str, ...] = ("ctc",), sampling: dict | None = None) -> str:
    """Judge WER and CER of every `curve-step*.ckpt` of a run (the trainer keeps them with
    `curve_every_n_steps`) against its training minutes, as a Markdown table."""
    import tempfile
    from narvox.recipes.average import average
    lines = [f"Learning curve of {exp_dir}: judges on {max_utts} utterances of {data_dir}", "",
             "| step | train_minutes | " + " | ".join(f"{j} WER % | {j} CER %" for j in judges) + " |",
             "|---|---|" + "---|---|" * len(judges)]
    for ckpt in sorted(Path(exp_dir, "checkpoints").glob("curve-step*.ckpt")):
        seconds = float(torch.load(ckpt, map_location="cpu", weights_only=False)["state_dict"]["train_seconds"])
        with tempfile.TemporaryDirectory() as tmp:
            result, _ = evaluate(average([ckpt], tmp), data_dir, codec_dir, max_utts, judges, similarity=False,
                                 sampling=sampling)
        cells = [f"{result['judges'][j]['wer_tts']:.1f} | {result['judges'][j]['cer_tts']:.1f}" for j in judges]
        lines.append(f"| {int(ckpt.stem.split('step')[1])} | {seconds / 60:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="TTS model directory (model.pt, tokens.txt)")
    p.add_argument("--curve", metavar="EXP_DIR", help="judge every curve-step*.ckpt of a run instead")
    p.add_argument("--data", required=True, help="data dir with text_phones and codes_<codec>.bin")
    p.add_argument("--codec", default="narvox", help="the codec the model speaks through (name or directory)")
    p.add_argument("--out", help="writes <out>.json, <out>.md")
    p.add_argument("--max-utts", type=int)
    p.add_argument("--judges", nargs="*", default=list(JUDGES), help=f"any of {JUDGES} or a narvox ASR model")
    p.add_argument("--no-similarity", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampling", nargs="*", default=[], metavar="KEY=VALUE",
                   help="sampling over the model's default (as narvox.TTS), e.g. cfg_scale=3.0 top_k=20")
    p.add_argument("--refiner", help="pseudo-AR models: a masked model that refines codebook 1 (PALLE's two models)")
    p.add_argument("--steps", type=lambda s: tuple(int(x) for x in s.split(",")),
                   help="masked and pseudo-AR: passes per codebook level (pseudo-AR: levels 2..Q), e.g. 8,2,1")
    p.add_argument("--span", type=float, help="pseudo-AR: share of the target made per step (default: the model's)")
    p.add_argument("--refine-steps", type=int, help="pseudo-AR: refinement passes over codebook 1 (default 7)")
    p.add_argument("--stream", action="store_true", help="pseudo-AR: judge the streamed speech (every level per span)")
    args = p.parse_args(argv)
    try:
        sampling = SamplingOptions.parse(args.sampling)
    except ValueError as e:
        p.error(str(e))
    logging.basicConfig(level=logging.INFO)
    if args.curve:
        print(learning_curve(args.curve, args.data, args.codec, args.max_utts or 30, tuple(args.judges), sampling))
        return
    generate = {k: v for k, v in (("steps", args.steps), ("span", args.span), ("refine_steps", args.refine_steps))
                if v is not None}
    result, _ = evaluate(args.model, args.data, args.codec, args.max_utts, tuple(args.judges),
                         not args.no_similarity, sampling=sampling, seed=args.seed, refiner=args.refiner,
                         generate=generate, stream=args.stream)
    text = markdown(result)
    print(text)
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(result, indent=1))
        Path(args.out + ".md").write_text(text)


if __name__ == "__main__":
    main()
