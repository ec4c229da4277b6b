"""Data preparation stages of the ASR recipes.

  python -m narvox.recipes.asr_prep tokens --data data/train --kind bpe --vocab-size 256 --form word_start \
      --out data/lang_bpe256_word_start
  python -m narvox.recipes.asr_prep perturb --data data/train --factors 0.9 1.0 1.1 --out data/train_sp
  python -m narvox.recipes.asr_prep dump --data data/train --fbank kaldi --out dump/kaldi/train --nj 2
  python -m narvox.recipes.asr_prep cmvn --dump dump/funasr/train --lfr-m 7 --lfr-n 6 --out dump/funasr/train/am.mvn
  python -m narvox.recipes.asr_prep degrade --data data/test_seen --condition tel --out data/test_seen_tel
"""
from __future__ import annotations

import argparse
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from narvox import audio
from narvox.data import DataDir, combine, read_data_dir, write_data_dir
from narvox.data import augment
from narvox.data.feats_dump import FbankDump, dump_fbank
from narvox.data.kaldi import speed_perturb
from narvox.features import CmvnAccumulator, FbankConfig, apply_lfr
from narvox.text.tokens import FORMS, BpeTokenizer, CharTokenizer

log = logging.getLogger(__name__)


def make_tokens(args) -> None:
    texts = list(read_data_dir(args.data).text.values())
    if args.kind == "bpe":
        tok = BpeTokenizer.train(texts, args.out, vocab_size=args.vocab_size, form=args.form)
    else:
        tok = CharTokenizer.train(texts)
    tok.save(args.out)
    print(f"{args.out}: {len(tok)} tokens, {tok.meta()}")


def perturb(args) -> None:
    data = read_data_dir(args.data)
    copies = [data if f == 1.0 else speed_perturb(data, f) for f in args.factors]
    write_data_dir(combine(copies), args.out)
    print(f"{args.out}: {len(data)} utterances x {len(args.factors)} speeds")


def dump(args) -> None:
    dump_fbank(args.data, args.out, nj=args.nj, config=FbankConfig.preset(args.fbank))


def cmvn(args) -> None:
    feats = FbankDump(args.dump)
    acc = CmvnAccumulator()
    for utt in feats.utts:
        acc.add(apply_lfr(feats[utt], args.lfr_m, args.lfr_n))
    acc.result().save(args.out)
    print(f"{args.out}: CMVN over {acc.count} frames of {len(feats.utts)} utterances")


def _degraded(condition: str, samples: np.ndarray, sr: int, rng: np.random.Generator,
              others: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """One utterance of a robustness test set: (audio, its rate).
    - tel: a telephone line at 8 kHz (mu-law or GSM, half each), left at 8 kHz as callers send it;
    - noisy: 10 dB SNR of noise no training run mixes in: blue noise (training draws white, pink
      and brown) or babble of other utterances of this test set (training babbles its own);
    - reverb: a room of RT60 0.3-0.8 s, a new room per utterance."""
    if condition == "tel":
        return augment.telephone_channel(samples, sr, str(rng.choice(["ULAW", "GSM610"]))), 8000
    if condition == "noisy":
        noise = augment.Noise(snr_db=(10.0, 10.0), colors=(-1.0,), babble=0.5, p=1.0,
                              babble_source=lambda k, r: others[:k])
        return noise(samples, sr, rng), sr
    if condition == "reverb":
        return augment.Reverb(rt60=(0.3, 0.8), bank_size=1, p=1.0)(samples, sr, rng), sr
    raise ValueError(f"unknown condition '{condition}' (one of {CONDITIONS})")


CONDITIONS = ("tel", "noisy", "reverb")


def _degrade_one(job: tuple[DataDir, str, str, int, int, Path]) -> str:
    data, utt, condition, seed, index, out_wav = job
    rng = np.random.default_rng([seed, index])
    samples, sr = data.load_audio(utt)
    utts = data.utt_ids
    others = [data.load_audio(utts[j], sample_rate=sr)[0]
              for j in rng.choice([j for j in range(len(utts)) if j != index], size=min(6, len(utts) - 1),
                                  replace=False)] if condition == "noisy" else []
    out, out_sr = _degraded(condition, samples, sr, rng, others)
    path = out_wav / f"{utt}.flac"
    audio.write_audio(path, out, out_sr)
    return str(path.resolve())


def degrade(args) -> None:
    """A robustness test set: every utterance of --data through one condition, same ids and text,
    audio in <out>/wav; seeded per utterance, so the set is the same on every machine."""
    data = read_data_dir(args.data)
    if args.condition not in CONDITIONS:
        raise SystemExit(f"unknown condition '{args.condition}' (one of {CONDITIONS})")
    out = Path(args.out)
    utts = data.utt_ids
    jobs = [(data, u, args.condition, args.seed, i, out / "wav") for i, u in enumerate(utts)]
    with ProcessPoolExecutor(max(1, args.nj)) as pool:
        paths = list(pool.map(_degrade_one, jobs, chunksize=8))
    write_data_dir(DataDir(wav_scp=dict(zip(utts, paths)), text=dict(data.text), utt2spk=dict(data.utt2spk)), out)
    print(f"{out}: {len(utts)} utterances of {args.data}, condition {args.condition}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="stage", required=True)
    s = sub.add_parser("tokens")
    s.add_argument("--data", required=True)
    s.add_argument("--kind", choices=["bpe", "char"], default="bpe")
    s.add_argument("--vocab-size", type=int, default=256)
    s.add_argument("--form", choices=FORMS, default="continuation",
                   help="how BPE symbols mark words: word_start ('▁', CTC/attention models: "
                        "sherpa-onnx's CTC text) or continuation ('@@', Paraformer: funasr-onnx)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=make_tokens)
    s = sub.add_parser("perturb")
    s.add_argument("--data", required=True)
    s.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.0, 1.1])
    s.add_argument("--out", required=True)
    s.set_defaults(func=perturb)
    s = sub.add_parser("dump")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--nj", type=int, default=2)
    s.add_argument("--fbank", choices=["kaldi", "funasr"], default="funasr",
                   help="kaldi: CTC/attention models (WeNet convention); funasr: Paraformer")
    s.set_defaults(func=dump)
    s = sub.add_parser("cmvn")
    s.add_argument("--dump", required=True)
    s.add_argument("--lfr-m", type=int, default=7)
    s.add_argument("--lfr-n", type=int, default=6)
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmvn)
    s = sub.add_parser("degrade", help="a robustness test set (telephone, noise, reverberation)")
    s.add_argument("--data", required=True)
    s.add_argument("--condition", required=True, choices=CONDITIONS)
    s.add_argument("--out", required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--nj", type=int, default=2)
    s.set_defaults(func=degrade)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    args.func(args)


if __name__ == "__main__":
    main()
