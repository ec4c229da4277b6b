"""Grapheme-to-phoneme: IPA phones from espeak-ng through phonemizer.

Uses the libespeak-ng bundled by espeakng-loader so G2P works without apt; falls back to a
system espeak-ng when the bundle is missing.
"""
from __future__ import annotations

import functools
import logging

from narvox.errors import TextError
from narvox.text.normalize import normalize

log = logging.getLogger(__name__)

WORD_BOUNDARY = "|"
PUNCTUATION = ",.!?;:"


@functools.lru_cache(maxsize=4)
def _backend(language: str):
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper
    try:
        import espeakng_loader
        EspeakWrapper.set_library(espeakng_loader.get_library_path())
        EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
    except ImportError:
        log.info("espeakng-loader is not installed: using the system espeak-ng")
    return EspeakBackend(language, with_stress=True, preserve_punctuation=True,
                         punctuation_marks=PUNCTUATION, language_switch="remove-flags")


def phonemize(texts: list[str], language: str = "en-us") -> list[list[str]]:
    """Phone sequences, with `|` between words and punctuation as its own token.

    Text is normalised first (numbers, abbreviations). A text with nothing to pronounce raises
    TextError naming it.
    """
    from phonemizer.separator import Separator
    normalised = [normalize(t, keep_punctuation=True) for t in texts]
    for raw, norm in zip(texts, normalised):
        if not any(c.isalpha() for c in norm):
            raise TextError(f"text has no pronounceable words: '{raw}'")
    separator = Separator(phone=" ", word=f" {WORD_BOUNDARY} ", syllable="")
    ipa = _backend(language).phonemize(normalised, separator=separator, strip=True, njobs=1)
    out = []
    for line in ipa:
        phones = []
        for token in line.split():
            # phonemizer glues preserved punctuation to the neighbouring phone ("t," / ".")
            core = token.strip(PUNCTUATION)
            if not core:
                phones += list(token)
                continue
            lead = token[:len(token) - len(token.lstrip(PUNCTUATION))]
            trail = token[len(token.rstrip(PUNCTUATION)):]
            phones += [*lead, core, *trail]
        # punctuation belongs to the word before it: "d , | ð", not "d | , | ð"
        phones = [p for i, p in enumerate(phones)
                  if not (p == WORD_BOUNDARY and (i + 1 == len(phones) or phones[i + 1] in PUNCTUATION))]
        out.append(phones)
    return out
