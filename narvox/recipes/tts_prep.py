"""Data preparation stages of the TTS recipes.

  python -m narvox.recipes.tts_prep phones --data data/train      # writes data/train/text_phones
  python -m narvox.recipes.tts_prep tokens --data data/train --out data/lang_phone

Phones come from the transcript as the corpus spells it (`text_raw`, with punctuation, which
marks pauses) when the data dir has one, else from `text`.
"""
from __future__ import annotations

import argparse

from narvox.data import read_data_dir, write_data_dir
from narvox.errors import DataDirError, TextError
from narvox.text.g2p import phonemize
from narvox.text.tokens import RESERVED, PhoneTokenizer, TokenTable


def make_phones(args) -> None:
    data = read_data_dir(args.data)
    texts = data.extra.get("text_raw", data.text)
    utts = data.utt_ids
    phones, problems = {}, []
    for start in range(0, len(utts), args.chunk):
        chunk = utts[start:start + args.chunk]
        try:
            seqs = phonemize([texts[u] for u in chunk], args.language)
        except TextError:  # find the culprits one by one, so every one is named
            seqs = []
            for u in chunk:
                try:
                    seqs += phonemize([texts[u]], args.language)
                except TextError as e:
                    problems.append(f"{u}: {e}")
                    seqs.append(None)
        phones.update((u, " ".join(s)) for u, s in zip(chunk, seqs) if s)
    if problems:
        raise DataDirError(f"{args.data}: {len(problems)} utterances have nothing to pronounce "
                           f"(fix or remove them):\n" + "\n".join(problems))
    data.extra["text_phones"] = phones
    write_data_dir(data, args.data)
    print(f"{args.data}/text_phones: {len(phones)} utterances, "
          f"{sum(len(p.split()) for p in phones.values()) / max(1, len(phones)):.1f} phones each")


def make_tokens(args) -> None:
    data = read_data_dir(args.data)
    if "text_phones" not in data.extra:
        raise DataDirError(f"{args.data}: no text_phones (run the phones stage first)")
    symbols = sorted({p for line in data.extra["text_phones"].values() for p in line.split()})
    tokenizer = PhoneTokenizer(TokenTable([*RESERVED, *symbols]), args.language)
    tokenizer.save(args.out)
    print(f"{args.out}: {len(tokenizer)} phone tokens")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("phones", help="phonemize a data dir's transcripts into text_phones")
    s.add_argument("--data", required=True)
    s.add_argument("--language", default="en-us")
    s.add_argument("--chunk", type=int, default=500, help="transcripts per espeak call")
    s.set_defaults(run=make_phones)
    s = sub.add_parser("tokens", help="the phone vocabulary (tokens.txt) of a data dir's text_phones")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--language", default="en-us")
    s.set_defaults(run=make_tokens)
    args = p.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
