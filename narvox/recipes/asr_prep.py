"""Data preparation stages of the ASR recipes.

  python -m narvox.recipes.asr_prep tokens --data data/train --kind bpe --vocab-size 256 --form word_start \
      --out data/lang_bpe256_word_start
  python -m narvox.recipes.asr_prep perturb --data data/train --factors 0.9 1.0 1.1 --out data/train_sp
  python -m narvox.recipes.asr_prep dump --data data/train --fbank kaldi --out dump/kaldi/train --nj 2
  python -m narvox.recipes.asr_prep cmvn --dump dump/funasr/train --lfr-m 7 --lfr-n 6 --out dump/funasr/train/am.mvn
"""
from __future__ import annotations

import argparse
import logging

from narvox.data import combine, read_data_dir, write_data_dir
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
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    args.func(args)


if __name__ == "__main__":
    main()
