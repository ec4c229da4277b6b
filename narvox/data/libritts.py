"""Kaldi data directories from an extracted LibriTTS tree (openslr 60).

Layout: <root>/LibriTTS/<part>/<speaker>/<chapter>/ holding, per utterance,
<speaker>_<chapter>_<para>_<sent>.wav (24 kHz) beside <same stem>.normalized.txt (one line: the
normalized text, with punctuation) and <same stem>.original.txt. Speakers are the <speaker>
directory, not speaker-chapter as for LibriSpeech: a TTS model conditions on the real voice.

Utterance ids are the file stems with the `_` after the speaker turned into `-`
(19_198_000000_000003 -> 19-198_000000_000003). The stems themselves would break Kaldi's sorting
rule when one speaker id is a prefix of another (`196_...` sorts before `19_...`, but speaker `19`
before `196`); `-` sorts below every digit, so utterances ordered by id stay ordered by speaker.
`text` is narvox's normalised text (the ASR / scoring view); `text_raw` is the .normalized.txt
line as is, with its punctuation, which the TTS front end reads.
"""
from __future__ import annotations

import logging
from pathlib import Path

from narvox.data.kaldi import DataDir, write_corpus_part
from narvox.errors import DataDirError
from narvox.text.normalize import normalize

PARTS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100",
         "train-clean-360", "train-other-500")
TEXT_SUFFIX = ".normalized.txt"

def find_part(root: str | Path, part: str) -> Path:
    root = Path(root)
    for candidate in (root / "LibriTTS" / part, root / part):
        if candidate.is_dir():
            return candidate
    raise DataDirError(f"no LibriTTS part '{part}' under {root} (looked for "
                       f"{root}/LibriTTS/{part} and {root}/{part})")

def utterance_id(stem: str) -> str:
    """19_198_000000_000003 -> 19-198_000000_000003 (see the module docstring)."""
    return stem.replace("_", "-", 1)

def prepare_part(root: str | Path, part: str, out_dir: str | Path) -> DataDir:
    """One part -> one data dir. A wav without a (non-empty) .normalized.txt, or a
    .normalized.txt without its wav, is an error naming the files; every problem in the part is
    listed in one DataDirError (nothing is dropped silently)."""
    part_dir = find_part(root, part)
    wav, text, raw, utt2spk = {}, {}, {}, {}
    problems = []
    for chapter_dir in sorted(p for p in part_dir.glob("*/*") if p.is_dir()):
        speaker, chapter = chapter_dir.parent.name, chapter_dir.name
        audio = {p.stem: p for p in chapter_dir.glob("*.wav")}
        texts = {p.name[:-len(TEXT_SUFFIX)]: p for p in chapter_dir.glob("*" + TEXT_SUFFIX)}
        for utt in sorted(texts.keys() - audio.keys()):
            problems.append(f"{texts[utt]}: no audio file {utt}.wav")
        for utt in sorted(audio):
            path = audio[utt]
            if utt not in texts:
                problems.append(f"{path}: no text file {utt}{TEXT_SUFFIX}")
                continue
            if not utt.startswith(f"{speaker}_{chapter}_"):
                problems.append(f"{path}: file name does not start with its speaker and chapter "
                                f"directories' '{speaker}_{chapter}_'")
                continue
            try:
                line = " ".join(texts[utt].read_text(encoding="utf-8").split())
            except UnicodeDecodeError as e:
                problems.append(f"{texts[utt]}: not UTF-8 ({e})")
                continue
            words = normalize(line) if line else ""
            if not words:
                problems.append(f"{texts[utt]}: empty text for {path.name}")
                continue
            utt = utterance_id(utt)
            wav[utt], raw[utt], text[utt], utt2spk[utt] = str(path.resolve()), line, words, speaker
    return write_corpus_part("LibriTTS", part_dir, problems, wav, text, raw, utt2spk, out_dir,
                             "<speaker>/<chapter>/*.wav files")

def main(argv: list[str] | None = None) -> None:
    import argparse
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", required=True, help="directory holding LibriTTS/ (or the parts)")
    p.add_argument("--parts", nargs="+", default=["train-clean-100", "dev-clean", "test-clean"],
                   help=f"any of {' '.join(PARTS)}")
    p.add_argument("--out", required=True, help="data/ (one dir per part, '-' -> '_')")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    for part in args.parts:
        prepare_part(args.root, part, Path(args.out) / part.replace("-", "_"))

if __name__ == "__main__":
    main()
