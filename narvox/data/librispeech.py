"""Kaldi data directories from an extracted LibriSpeech tree.

Layout (as the openslr tarballs extract): <root>/LibriSpeech/<part>/<speaker>/<chapter>/
holding <speaker>-<chapter>-<n>.flac and <speaker>-<chapter>.trans.txt. Speakers are
`<speaker>-<chapter>` as in Kaldi's recipe, so speaker ids prefix utterance ids.
"""
from __future__ import annotations

import logging
from pathlib import Path

from narvox.data.kaldi import DataDir, write_corpus_part
from narvox.errors import DataDirError
from narvox.text.normalize import normalize

PARTS = ("dev-clean", "dev-other", "test-clean", "test-other", "train-clean-100",
         "train-clean-360", "train-other-500")

def find_part(root: str | Path, part: str) -> Path:
    root = Path(root)
    for candidate in (root / "LibriSpeech" / part, root / part):
        if candidate.is_dir():
            return candidate
    raise DataDirError(f"no LibriSpeech part '{part}' under {root} (looked for "
                       f"{root}/LibriSpeech/{part} and {root}/{part})")

def prepare_part(root: str | Path, part: str, out_dir: str | Path) -> DataDir:
    """One part -> one data dir. A transcript line without audio, or audio without a
    transcript line, is an error naming both files (nothing is dropped silently)."""
    part_dir = find_part(root, part)
    wav, text, raw, utt2spk = {}, {}, {}, {}
    problems = []
    for trans in sorted(part_dir.glob("*/*/*.trans.txt")):
        chapter_dir = trans.parent
        speaker = f"{chapter_dir.parent.name}-{chapter_dir.name}"
        listed = set()
        for n, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt, _, words = line.partition(" ")
            audio = chapter_dir / f"{utt}.flac"
            if not audio.is_file():
                problems.append(f"{trans}:{n}: {utt} has no audio file {audio.name}")
                continue
            if not utt.startswith(speaker):
                problems.append(f"{trans}:{n}: utterance {utt} is not in chapter {speaker}")
                continue
            listed.add(utt)
            wav[utt], raw[utt], text[utt], utt2spk[utt] = str(audio.resolve()), words.strip(), normalize(words), speaker
        for audio in sorted(chapter_dir.glob("*.flac")):
            if audio.stem not in listed:
                problems.append(f"{audio}: no line in {trans.name}")
    return write_corpus_part("LibriSpeech", part_dir, problems, wav, text, raw, utt2spk, out_dir,
                             "*.trans.txt files")

def main(argv: list[str] | None = None) -> None:
    import argparse
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--root", required=True, help="directory holding LibriSpeech/")
    p.add_argument("--parts", nargs="+", default=["train-clean-100", "dev-clean", "test-clean", "test-other"])
    p.add_argument("--out", required=True, help="data/ (one dir per part, '-' -> '_')")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    for part in args.parts:
        prepare_part(args.root, part, Path(args.out) / part.replace("-", "_"))

if __name__ == "__main__":
    main()
