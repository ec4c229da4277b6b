"""English text normaliser: spoken-form words for ASR targets and TTS input.

"Dr. Smith paid $3.50 on May 1st, 1999." -> "doctor smith paid three dollars fifty cents on may
first nineteen ninety nine". Numbers are verbalised with num2words.
"""
from __future__ import annotations

import re
import unicodedata

from num2words import num2words

ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "jr": "junior",
    "sr": "senior", "prof": "professor", "capt": "captain", "gen": "general", "lt": "lieutenant",
    "col": "colonel", "sgt": "sergeant", "rev": "reverend", "hon": "honorable", "mt": "mount",
    "vs": "versus", "etc": "et cetera", "approx": "approximately", "no": "number", "dept": "department",
    "inc": "incorporated", "ltd": "limited", "co": "company", "corp": "corporation", "ft": "feet",
}
# "no." only means "number" before a digit; the rest only when written with the period.
ABBREVIATION = re.compile(r"\b(" + "|".join(k for k in ABBREVIATIONS if k != "no") + r")\.", re.I)
NUMBER_ABBREVIATION = re.compile(r"\bno\.\s*(?=\d)", re.I)
LATIN = {"e.g.": "for example", "i.e.": "that is", "a.m.": "a m", "p.m.": "p m"}
CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
              "€": ("euro", "euros", "cent", "cents")}
SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number "}

CURRENCY = re.compile(r"([$£€])\s?(\d[\d,]*)(?:\.(\d{1,2}))?\b")
ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.I)
DECIMAL = re.compile(r"\b(\d+)\.(\d+)\b")
YEAR = re.compile(r"\b(1[1-9]\d\d|20\d\d)(s?)\b")
THOUSANDS = re.compile(r"\b\d{1,3}(?:,\d{3})+\b")
CARDINAL = re.compile(r"\d+")
QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "..."})


def _words(n: int | float, to: str = "cardinal") -> str:
    return num2words(n, to=to, lang="en").replace("-", " ").replace(",", "")


def _currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = CURRENCIES[m.group(1)]
    whole = int(m.group(2).replace(",", ""))
    part = int((m.group(3) or "0").ljust(2, "0"))
    out = f"{_words(whole)} {one if whole == 1 else many}"
    if part:
        out += f" {_words(part)} {sub_one if part == 1 else sub_many}"
    return f" {out} "


def _year(m: re.Match) -> str:
    year, plural = int(m.group(1)), m.group(2)
    words = _words(year, "year")
    if plural:  # 1980s -> nineteen eighties
        words = re.sub(r"y$", "ie", words) + "s"
    return words


def _decimal(m: re.Match) -> str:
    return f"{_words(int(m.group(1)))} point {' '.join(_words(int(d)) for d in m.group(2))}"


def normalize(text: str, keep_punctuation: bool = False) -> str:
    """Lower-case spoken-form words; apostrophes kept.

    With `keep_punctuation`, sentence punctuation (, . ! ? ; :) survives as separate tokens so a
    TTS front end can place pauses.
    """
    text = unicodedata.normalize("NFKC", text).translate(QUOTES)
    for written, spoken in LATIN.items():
        text = re.sub(re.escape(written), f" {spoken} ", text, flags=re.I)
    text = NUMBER_ABBREVIATION.sub(" number ", text)
    text = ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1).lower()], text)
    text = CURRENCY.sub(_currency, text)
    text = THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), text)
    text = ORDINAL.sub(lambda m: " " + _words(int(m.group(1)), "ordinal") + " ", text)
    text = DECIMAL.sub(_decimal, text)
    text = YEAR.sub(_year, text)
    text = CARDINAL.sub(lambda m: f" {_words(int(m.group(0)))} ", text)
    for symbol, spoken in SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = text.lower()
    # apostrophes inside words stay (don't, o'clock); quoting apostrophes go
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    if keep_punctuation:
        text = re.sub(r"[!?]+", lambda m: f" {m.group(0)[0]} ", text)
        text = re.sub(r"[.;:,]", lambda m: f" {m.group(0)} ", text)
        text = re.sub(r"[^a-z' ,.!?;:]", " ", text)
    else:
        text = re.sub(r"[^a-z' ]", " ", text)
    return " ".join(text.split())
