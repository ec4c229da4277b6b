"""Codec learnability probe: how well a small fixed text model predicts each codec's first codebook.

  python bench/codec_probe.py --codecs narvox/pretrained/codec/narvox egs/synth_en/codec/exp/codec/model \
      --labels old new --train egs/synth_en/codec/data/train --valid egs/synth_en/codec/data/dev --minutes 5

Why: a text-to-speech model built on a codec predicts its tokens from text, first codebook first.
Acoustic RVQ tokens (codebook 1 of a codec trained on reconstruction alone) mix what was said with
who said it and how, so they are hard to predict from text; a first codebook distilled from a
recognizer's encoder (narvox.codecs.teacher) should carry mostly the phones and be easier. Issue
#10 asks for that to be measured, not assumed.

What: every utterance's reference transcript is force-aligned (CTC Viterbi, torchaudio's
forced_align) by narvox's shipped CTC recognizer, once, for all codecs alike. Each ASR frame
(25 frames/s) gets the BPE token whose CTC spike came last at or before it (frames before the first
spike get the first token) and the number of frames since that spike (clipped at 15); codec frames
take the unit of the ASR frame at the same time. A fixed probe (token + offset embeddings, a fixed
sinusoidal position code, 2 bidirectional Transformer layers of width 192, a linear head over the
codebook) learns codebook-1 tokens from those units: AdamW, lr 1e-3, 16 utterances a batch, the same
seed, data order and wall-clock budget (`--minutes`, or `--steps`) for every codec. Reported on the
valid set: cross-entropy (nats/frame) and top-1 accuracy, beside the cross-entropy of the codec's
own train-set token frequencies (add-one smoothed), the no-text baseline. Lower CE, and a bigger
gap below the unigram CE, means a text model finds the codec easier to learn. Under a time budget
the step count depends on machine load: it is reported, and comparisons should be between runs of
the same step count (`--steps`) when the machine is shared.

Utterances the recognizer cannot align (empty text, more tokens than frames, too short) are named
in a warning, counted in the results and left out for every codec.
Writes OUT.json (every number, the arguments, each codec's identity) and OUT.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from narvox.data import read_data_dir
from narvox.runtime import OnnxASR, OnnxCodec
from narvox.runtime.session import GraphSession
from narvox.text.tokens import CONTINUATION, RESERVED, SPACE, TokenTable, load_tokenizer, read_tokenizer_meta

log = logging.getLogger("codec_probe")

MAX_OFFSET = 15  # frames since the last spike, clipped: 16 offset embeddings
D_MODEL, HEADS, FF, LAYERS, DROPOUT = 192, 4, 768, 2, 0.1
BATCH, LR = 16, 1e-3
DEFAULT_TOKENIZER = Path("egs/synth_en/codec/exp/teacher_ctc")


# ---- text units ---------------------------------------------------------------------------------

def fewest_pieces(word: str, pieces: set[str]) -> list[str] | None:
    """`word` split into the fewest strings of `pieces` (the longest first piece among equals), or
    None when no split exists."""
    n = len(word)
    cost: list[float] = [math.inf] * n + [0]
    choice = [0] * n
    for i in range(n - 1, -1, -1):
        for j in range(n, i, -1):  # longest first: a tie keeps the longer piece
            if word[i:j] in pieces and cost[j] + 1 < cost[i]:
                cost[i], choice[i] = cost[j] + 1, j
    if math.isinf(cost[0]):
        return None
    out, i = [], 0
    while i < n:
        out.append(word[i:choice[i]])
        i = choice[i]
    return out


def vocabulary_encoder(table: TokenTable, form: str) -> Callable[[str], list[int]]:
    """Text -> ids with nothing but the vocabulary: each word split into the fewest pieces of the
    table in its BPE symbol form ("word_start": "▁ship ment"; "continuation": "ship@@ ment"); a
    word no pieces cover becomes <unk>."""
    symbols = [s for s in table.symbols if s not in RESERVED]
    if form == "word_start":
        pieces = set(symbols)
        split = lambda w: fewest_pieces(SPACE + w, pieces)  # noqa: E731
    else:
        pieces = {s for s in symbols if not s.endswith(CONTINUATION)}

        def split(w: str) -> list[str] | None:
            parts = fewest_pieces(w, pieces)
            return None if parts is None else [p + CONTINUATION * (i + 1 < len(parts)) for i, p in enumerate(parts)]

    def encode(text: str) -> list[int]:
        ids = []
        for word in text.split():
            parts = split(word)
            ids += [table.unk_id] if parts is None else [table[p] for p in parts]
        return ids
    return encode


def text_encoder(directory: Path, asr_tokens: TokenTable) -> tuple[Callable[[str], list[int]], int, str]:
    """(text -> ids, vocabulary size, how) for the recognizer's vocabulary. The recipe's own
    tokenizer (narvox.text.tokens.load_tokenizer) when the directory has all of it; a model
    directory rebuilt from a bundle (tools/bundle_weights.py) has tokens.txt and tokenizer.json
    but no sentencepiece bpe.model, and then words are split into the fewest vocabulary pieces,
    which is what BPE gives for most words (and the same for every codec either way)."""
    table = TokenTable.load(directory / "tokens.txt")
    if table.symbols != asr_tokens.symbols:
        raise SystemExit(f"{directory}/tokens.txt is not the recognizer's vocabulary")
    meta = read_tokenizer_meta(directory)
    if meta["kind"] != "bpe" or (directory / "bpe.model").is_file():
        return load_tokenizer(directory).encode, len(table), f"{meta['kind']} tokenizer"
    log.warning("%s has no bpe.model: splitting words into the fewest vocabulary pieces", directory)
    return vocabulary_encoder(table, meta["form"]), len(table), f"fewest {meta['form']} pieces of tokens.txt"


@dataclass
class Units:
    """Per ASR frame: the token of the last CTC spike and the frames since it."""
    tokens: np.ndarray   # int64 [T']
    offsets: np.ndarray  # int64 [T']


def spike_units(log_probs: np.ndarray, ids: list[int]) -> Units:
    """Force-align `ids` to [T', V] log-probs (blank 0) and spread each token over its frames.
    Raises RuntimeError when the alignment is impossible (more tokens than frames)."""
    labels, _ = AF.forced_align(torch.from_numpy(log_probs)[None], torch.tensor([ids], dtype=torch.int32), blank=0)
    labels = labels[0].numpy()
    previous = np.concatenate([[0], labels[:-1]])
    # a token's spike is the first frame of its run; repeats of a token are split by a blank
    spikes = np.flatnonzero((labels != 0) & (labels != previous))
    assert len(spikes) == len(ids), (len(spikes), len(ids))
    is_spike = np.zeros(len(labels), dtype=bool)
    is_spike[spikes] = True
    last = np.cumsum(is_spike) - 1  # index of the last spike at or before each frame, -1 before any
    tokens = np.asarray(ids, dtype=np.int64)[np.maximum(last, 0)]
    # frames before the first spike are leading silence: the "long since a spike" offset, not 0
    offsets = np.where(last >= 0, np.arange(len(labels)) - spikes[np.maximum(last, 0)], MAX_OFFSET)
    return Units(tokens, np.minimum(offsets, MAX_OFFSET).astype(np.int64))


def align_all(asr: OnnxASR, graph: GraphSession, encode: Callable[[str], list[int]], data, utts: list[str],
              cache: dict[str, np.ndarray]) -> tuple[dict[str, Units], list[str]]:
    """Units of each utterance that aligns, and the ids of those that do not."""
    units, failed = {}, []
    for utt in utts:
        audio = load(data, utt, asr.frontend.sample_rate, cache)
        feats = asr.frontend(audio)
        ids = encode(data.text[utt])
        if not ids or len(feats) < asr.meta["min_frames"]:
            log.warning("%s: not aligned (%d tokens, %d feature frames)", utt, len(ids), len(feats))
            failed.append(utt)
            continue
        log_probs, lengths = graph(feats[None].astype(np.float32), np.array([len(feats)], dtype=np.int64))
        try:
            units[utt] = spike_units(log_probs[0, :lengths[0]].astype(np.float32), ids)
        except RuntimeError as e:
            log.warning("%s: not aligned: %s", utt, str(e).split(",")[-1].strip())
            failed.append(utt)
    return units, failed


def load(data, utt: str, rate: int, cache: dict[str, np.ndarray]) -> np.ndarray:
    """Audio at `rate`, kept for later codecs of the same rate (the ASR and narvox codecs share 16 kHz)."""
    key = f"{rate}:{utt}"
    if key not in cache:
        cache[key] = data.load_audio(utt, rate)[0].astype(np.float32)
    return cache[key]


# ---- codes --------------------------------------------------------------------------------------

@dataclass
class Example:
    tokens: np.ndarray   # int64 [F]
    offsets: np.ndarray  # int64 [F]
    codes: np.ndarray    # int64 [F], codebook 1


def examples(codec: OnnxCodec, units: Units, asr_rate: float, audio: np.ndarray) -> Example:
    codes = codec.encode(audio)[0, 0]
    # codec frame i covers the time of ASR frame floor(i * asr_rate / codec_rate)
    at = np.minimum((np.arange(len(codes)) * asr_rate / codec.frame_rate + 1e-9).astype(np.int64),
                    len(units.tokens) - 1)
    return Example(units.tokens[at], units.offsets[at], codes.astype(np.int64))


# ---- probe --------------------------------------------------------------------------------------

class Probe(nn.Module):
    """Token + offset embeddings -> 2 bidirectional Transformer layers -> codebook logits. The
    sinusoidal position code is fixed: without one, self-attention sees a bag of frames and cannot
    tell which tokens are neighbours."""

    def __init__(self, vocab: int, codebook_size: int):
        super().__init__()
        self.token = nn.Embedding(vocab, D_MODEL)
        self.offset = nn.Embedding(MAX_OFFSET + 1, D_MODEL)
        layer = nn.TransformerEncoderLayer(D_MODEL, HEADS, FF, DROPOUT, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = nn.Linear(D_MODEL, codebook_size)

    @staticmethod
    def positions(frames: int) -> torch.Tensor:
        pos = torch.arange(frames, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, D_MODEL, 2, dtype=torch.float32) * (-math.log(10000.0) / D_MODEL))
        out = torch.zeros(frames, D_MODEL)
        out[:, 0::2], out[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
        return out

    def forward(self, tokens: torch.Tensor, offsets: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x = self.token(tokens) + self.offset(offsets) + self.positions(tokens.shape[1])
        return self.head(self.encoder(x, src_key_padding_mask=padding))


def collate(batch: list[Example]) -> tuple[torch.Tensor, ...]:
    """(tokens, offsets, padding mask, targets), padded to the longest; padded targets are -100."""
    frames = max(len(e.codes) for e in batch)
    tokens = torch.zeros(len(batch), frames, dtype=torch.long)
    offsets = torch.zeros_like(tokens)
    targets = torch.full_like(tokens, -100)
    for i, e in enumerate(batch):
        n = len(e.codes)
        tokens[i, :n], offsets[i, :n] = torch.from_numpy(e.tokens), torch.from_numpy(e.offsets)
        targets[i, :n] = torch.from_numpy(e.codes)
    return tokens, offsets, targets == -100, targets


def train(model: Probe, data: list[Example], seed: int, steps: int | None, seconds: float) -> dict:
    """Train for `steps` steps, or until `seconds` of wall clock are spent. The batch order is a
    function of the seed alone, so every codec sees the same utterances in the same order."""
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    order = np.random.default_rng(seed)
    model.train()
    losses: list[float] = []
    start = time.perf_counter()
    while True:
        perm = order.permutation(len(data))
        for i in range(0, len(perm), BATCH):
            tokens, offsets, padding, targets = collate([data[j] for j in perm[i:i + BATCH]])
            loss = F.cross_entropy(model(tokens, offsets, padding).transpose(1, 2), targets, ignore_index=-100)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            elapsed = time.perf_counter() - start
            if (steps is not None and len(losses) >= steps) or (steps is None and elapsed >= seconds):
                return {"train_steps": len(losses), "train_seconds": elapsed, "first_loss": losses[0],
                        "last_loss": losses[-1]}


@torch.no_grad()
def evaluate(model: Probe, data: list[Example]) -> tuple[float, float, int]:
    """(cross-entropy in nats/frame, top-1 accuracy, frames) over real frames."""
    model.eval()
    total = correct = frames = 0.0
    for i in range(0, len(data), BATCH):
        tokens, offsets, padding, targets = collate(data[i:i + BATCH])
        logits = model(tokens, offsets, padding)
        real = ~padding
        total += F.cross_entropy(logits[real], targets[real], reduction="sum").item()
        correct += (logits[real].argmax(-1) == targets[real]).sum().item()
        frames += real.sum().item()
    return total / frames, correct / frames, int(frames)


def unigram_ce(train: list[Example], valid: list[Example], codebook_size: int) -> float:
    """Cross-entropy on the valid set of the train set's token frequencies (add-one smoothed, so a
    token unseen in training costs a finite amount)."""
    counts = np.bincount(np.concatenate([e.codes for e in train]), minlength=codebook_size) + 1.0
    log_p = np.log(counts / counts.sum())
    return float(-log_p[np.concatenate([e.codes for e in valid])].mean())


# ---- report -------------------------------------------------------------------------------------

def markdown(result: dict) -> str:
    budget = f"{result['args']['steps']} steps" if result["args"]["steps"] else f"{result['args']['minutes']:g} min"
    lines = [f"Codebook-1 probe: {LAYERS}-layer Transformer (d={D_MODEL}) from CTC-aligned tokens "
             f"({result['tokenizer']['vocab']} symbols, {result['tokenizer']['how']}) + frames since the "
             f"token's spike, trained {budget} on {result['train_utts']} utterances of {result['args']['train']}, "
             f"scored on {result['valid_utts']} of {result['args']['valid']}; {len(result['unaligned'])} "
             f"utterances left out (not aligned).", "",
             "| codec | frame rate | train steps | valid CE (nats/frame) | valid accuracy % | unigram CE |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['label']} | {r['frame_rate']:g} Hz | {r['train_steps']} | {r['valid_ce']:.3f} | "
                     f"{100 * r['valid_accuracy']:.2f} | {r['unigram_ce']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", type=Path, nargs="+", required=True, help="codec bundle directories")
    p.add_argument("--labels", nargs="+", help="row names (default: the directories' names)")
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--valid", type=Path, required=True)
    p.add_argument("--train-utts", type=int, default=1500)
    p.add_argument("--valid-utts", type=int, default=200)
    p.add_argument("--asr", default="ctc", help="CTC bundle (directory or shipped name) that aligns")
    p.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER,
                   help="the recognizer's tokenizer directory (tokens.txt, tokenizer.json)")
    p.add_argument("--minutes", type=float, default=5.0, help="training time per codec")
    p.add_argument("--steps", type=int, help="train this many steps instead of for --minutes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("bench/results/codec_probe"))
    args = p.parse_args(argv)
    labels = args.labels or [d.name for d in args.codecs]
    if len(labels) != len(args.codecs):
        p.error("give one --labels name per codec")
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    torch.set_num_threads(args.threads)

    asr = OnnxASR(args.asr, num_threads=args.threads)
    if asr.kind != "ctc":
        p.error(f"--asr must be a CTC bundle, not {asr.kind}")
    graph = GraphSession(asr.bundle, "model", None, args.threads)  # its raw log-probs, not a search
    asr_rate = 1 / asr.meta["frame_shift"]
    encode, vocab, how = text_encoder(args.tokenizer, asr.tokens)
    sets = {}
    for name, directory, n in (("train", args.train, args.train_utts), ("valid", args.valid, args.valid_utts)):
        data = read_data_dir(directory)
        cache: dict[str, np.ndarray] = {}
        units, failed = align_all(asr, graph, encode, data, data.utt_ids[:n], cache)
        sets[name] = (data, units, failed, cache)
        print(f"{name}: {len(units)} utterances aligned, {len(failed)} not", flush=True)
        if not units:
            raise SystemExit(f"{directory}: no utterance could be aligned")

    rows = []
    for label, directory in zip(labels, args.codecs):
        codec = OnnxCodec(directory, num_threads=args.threads)
        split = {name: [examples(codec, u, asr_rate, load(data, utt, codec.sample_rate, cache))
                        for utt, u in units.items()]
                 for name, (data, units, _, cache) in sets.items()}
        torch.manual_seed(args.seed)
        model = Probe(vocab, codec.codebook_size)
        row = {"label": label, "path": str(directory), "codec": codec.identity(),
               "frame_rate": codec.frame_rate, "codebook_size": codec.codebook_size}
        row.update(train(model, split["train"], args.seed, args.steps, args.minutes * 60))
        ce, acc, frames = evaluate(model, split["valid"])
        row.update(valid_ce=ce, valid_accuracy=acc, valid_frames=frames,
                   train_frames=sum(len(e.codes) for e in split["train"]),
                   unigram_ce=unigram_ce(split["train"], split["valid"], codec.codebook_size))
        rows.append(row)
        print(json.dumps(row), flush=True)

    result = {"args": {k: [str(x) for x in v] if isinstance(v, list) else str(v) if isinstance(v, Path) else v
                       for k, v in vars(args).items()},
              "asr": str(asr.bundle.path), "tokenizer": {"dir": str(args.tokenizer), "vocab": vocab, "how": how},
              "train_utts": len(sets["train"][1]), "valid_utts": len(sets["valid"][1]),
              "unaligned": sets["train"][2] + sets["valid"][2], "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{args.out}.json").write_text(json.dumps(result, indent=2) + "\n")
    Path(f"{args.out}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
