"""Word and character error rates with jiwer, on normalised text."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import jiwer

from narvox.text.normalize import normalize


@dataclass
class ErrorRates:
    wer: float
    cer: float
    words: int
    substitutions: int
    deletions: int
    insertions: int
    utterances: int

    def to_dict(self) -> dict:
        return asdict(self)


def error_rates(refs: list[str], hyps: list[str]) -> ErrorRates:
    """Both sides are normalised (lower case, no punctuation, numbers as words) before scoring;
    an empty hypothesis counts every reference word as deleted."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    refs = [normalize(r) for r in refs]
    hyps = [normalize(h) for h in hyps]
    keep = [i for i, r in enumerate(refs) if r]
    refs, hyps = [refs[i] for i in keep], [hyps[i] for i in keep]
    words = jiwer.process_words(refs, hyps)
    chars = jiwer.cer(refs, hyps)
    return ErrorRates(wer=words.wer, cer=float(chars), words=sum(len(r.split()) for r in refs),
                      substitutions=words.substitutions, deletions=words.deletions,
                      insertions=words.insertions, utterances=len(refs))
