"""SubRip (.srt) subtitles of a transcript: one cue per phrase. Torch-free.

A transcript only has the start of each token, so a cue runs from its first token's start to
shortly after its last token's start, never past the next cue or the end of the audio.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from narvox.text.tokens import CONTINUATION, SPACE, guess_form, tokens_to_text

if TYPE_CHECKING:
    from narvox.asr.api import Transcript

PAUSE_SECONDS = 0.7      # a longer gap between two token starts ends a phrase
MAX_CUE_SECONDS = 7.0    # a phrase running longer is cut at the next word
LAST_WORD_SECONDS = 1.0  # how long a cue stays up after its last token starts (a word, and time to read it)


def word_starts(tokens: list[str]) -> list[bool]:
    """Whether each token begins a word, read the way tokens_to_text reads them: in the "@@"
    form a word ends at a token without "@@" (so does a vocabulary with neither mark, of whole
    words); in the sentencepiece form a word begins at a token starting with "▁"."""
    if guess_form(tokens) == "continuation":
        return [i == 0 or not tokens[i - 1].endswith(CONTINUATION) for i in range(len(tokens))]
    return [i == 0 or t.startswith(SPACE) for i, t in enumerate(tokens)]


def srt_cues(transcript: "Transcript") -> list[tuple[float, float, str]]:
    """(start s, end s, text) per phrase: a new cue starts at a word after a pause or once the
    cue has run MAX_CUE_SECONDS. Cues are in order, do not overlap and lie within the audio."""
    tokens = transcript.tokens
    duration = round(transcript.duration, 3)
    # a start rounded onto the audio's very end still needs a millisecond of cue
    times = [min(round(t, 3), duration - 0.001) for t in transcript.timestamps]
    groups: list[list[int]] = []
    for i, starts_word in enumerate(word_starts(tokens)):
        if not groups or (starts_word and (times[i] - times[i - 1] > PAUSE_SECONDS
                                           or times[i] - times[groups[-1][0]] >= MAX_CUE_SECONDS)):
            groups.append([])
        groups[-1].append(i)
    starts = [times[g[0]] for g in groups]
    cues = []
    for k, group in enumerate(groups):
        next_start = starts[k + 1] if k + 1 < len(groups) else duration
        end = min(times[group[-1]] + LAST_WORD_SECONDS, next_start, duration)
        cues.append((round(starts[k], 3), round(end, 3), tokens_to_text(tokens[i] for i in group)))
    return cues


def _timestamp(seconds: float) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def to_srt(transcript: "Transcript") -> str:
    """The transcript as a SubRip file, cues numbered from 1 (empty when nothing was heard)."""
    return "".join(f"{n}\n{_timestamp(start)} --> {_timestamp(end)}\n{text}\n\n"
                   for n, (start, end, text) in enumerate(srt_cues(transcript), 1))
