"""Token vocabularies (characters, sentencepiece BPE, phones) and `tokens.txt` I/O.

Every vocabulary starts with the reserved symbols the ASR models and the ONNX runtimes need, in
FunASR's order: `<blk>` = 0 (CTC blank; sherpa-onnx looks it up by name), `<s>` = 1, `</s>` = 2
(the end Paraformer and the attention decoder emit; sherpa-onnx stops on it and funasr-onnx drops
ids 0 and 2 by number), `<unk>` = 3. Tokenizers are torch-free.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path
from typing import Iterable

from narvox.errors import TextError

BLANK, UNK, SOS, EOS = "<blk>", "<unk>", "<s>", "</s>"
RESERVED = (BLANK, SOS, EOS, UNK)
SPACE = "▁"  # word start, as sentencepiece writes it
CONTINUATION = "@@"  # a piece the next piece continues, as FunASR's English vocabularies write it
# How subword symbols mark words: "▁" word starts ("▁ship ment"), what sherpa-onnx's CTC (WeNet)
# text needs, or "@@" continuations ("ship@@ ment"), what funasr-onnx's Paraformer reads.
FORMS = ("word_start", "continuation")


class TokenTable:
    """A bijection symbol <-> id, saved as `tokens.txt` (`symbol id` per line)."""

    def __init__(self, symbols: Iterable[str]):
        self.symbols = list(symbols)
        if tuple(self.symbols[:len(RESERVED)]) != RESERVED:
            raise TextError(f"a token table must start with {RESERVED}, got {self.symbols[:4]}")
        self.ids = {s: i for i, s in enumerate(self.symbols)}
        if len(self.ids) != len(self.symbols):
            dup = [s for s, n in Counter(self.symbols).items() if n > 1]
            raise TextError(f"duplicate symbols in token table: {dup[:5]}")
        for s in self.symbols:
            if not s or any(c.isspace() for c in s):
                raise TextError(f"token symbol {s!r} is empty or holds white space")

    blank_id, sos_id, eos_id, unk_id = 0, 1, 2, 3

    def __len__(self) -> int:
        return len(self.symbols)

    def __getitem__(self, symbol: str) -> int:
        return self.ids.get(symbol, self.unk_id)

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(f"{s} {i}\n" for i, s in enumerate(self.symbols)), encoding="utf-8")

    def save_json(self, path: str | Path) -> None:
        """funasr-onnx's `tokens.json`: the symbols as a JSON list."""
        Path(path).write_text(json.dumps(self.symbols, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> "TokenTable":
        path = Path(path)
        pairs = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                raise TextError(f"{path}:{n}: expected 'symbol id', got {line!r}")
            pairs.append((int(fields[1]), fields[0]))
        pairs.sort()
        if [i for i, _ in pairs] != list(range(len(pairs))):
            raise TextError(f"{path}: ids must be 0..{len(pairs) - 1} without gaps")
        return cls(s for _, s in pairs)


class Tokenizer(ABC):
    """Text <-> ids. Subclasses define how text splits into symbols."""
    kind = ""

    def __init__(self, table: TokenTable):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    @abstractmethod
    def split(self, text: str) -> list[str]:
        """The symbols of a text, in the table's alphabet."""

    def join(self, symbols: list[str]) -> str:
        return "".join(symbols).replace(SPACE, " ").strip()

    def encode(self, text: str) -> list[int]:
        return [self.table[s] for s in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return self.join([self.table.symbols[i] for i in ids if i >= len(RESERVED) or i == self.table.unk_id])

    def meta(self) -> dict:
        """What `load_tokenizer` needs besides tokens.txt, saved as tokenizer.json."""
        return {"kind": self.kind}

    def save(self, directory: str | Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.table.save(directory / "tokens.txt")
        (directory / "tokenizer.json").write_text(json.dumps(self.meta()))


class CharTokenizer(Tokenizer):
    """Characters, with `▁` for the space between words."""
    kind = "char"

    @classmethod
    def train(cls, texts: Iterable[str]) -> "CharTokenizer":
        chars = Counter(c for t in texts for c in t.replace(" ", SPACE))
        return cls(TokenTable([*RESERVED, *sorted(chars)]))

    def split(self, text: str) -> list[str]:
        return list(" ".join(text.split()).replace(" ", SPACE))


class PhoneTokenizer(Tokenizer):
    """IPA phones from narvox.text.g2p; `|` marks word boundaries."""
    kind = "phone"

    def __init__(self, table: TokenTable, language: str = "en-us"):
        super().__init__(table)
        self.language = language

    @classmethod
    def train(cls, texts: Iterable[str], language: str = "en-us") -> "PhoneTokenizer":
        from narvox.text.g2p import phonemize
        phones = Counter(p for seq in phonemize(list(texts), language) for p in seq)
        return cls(TokenTable([*RESERVED, *sorted(phones)]), language)

    def split(self, text: str) -> list[str]:
        from narvox.text.g2p import phonemize
        return phonemize([text], self.language)[0]

    def join(self, symbols: list[str]) -> str:
        return " ".join(symbols)

    def meta(self) -> dict:
        return {**super().meta(), "language": self.language}


class BpeTokenizer(Tokenizer):
    """sentencepiece BPE in one of two symbol forms (FORMS), fixed when the vocabulary is trained:

    - "word_start": sentencepiece's own pieces ("▁sh ip ment"). sherpa-onnx's CTC decoder joins
      symbols verbatim and turns a leading "▁" into a space, so only this form gives its text.
    - "continuation": FunASR's English convention, all pieces of a word but the last ending in
      "@@" ("sh@@ ip@@ ment"), which funasr-onnx's timestamp path and sherpa-onnx's Paraformer read.
      Every piece then has two symbols: final and "@@".

    The forms carry the same words but cannot be relabelled into each other id by id ("u@@" can
    start "understand" or sit inside "language"), so a model is trained on the form its runtime reads.
    """
    kind = "bpe"

    def __init__(self, table: TokenTable, model_path: str | Path, form: str):
        import sentencepiece as spm
        if form not in FORMS:
            raise TextError(f"unknown BPE symbol form '{form}' (one of {FORMS})")
        super().__init__(table)
        self.model_path = Path(model_path)
        self.form = form
        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))

    @classmethod
    def train(cls, texts: Iterable[str], directory: str | Path, vocab_size: int = 256,
              form: str = "continuation") -> "BpeTokenizer":
        import sentencepiece as spm
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        prefix = directory / "bpe"
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts)), model_prefix=str(prefix), vocab_size=vocab_size,
            model_type="bpe", character_coverage=1.0, unk_id=0, bos_id=-1, eos_id=-1,
            hard_vocab_limit=False, minloglevel=2)
        sp = spm.SentencePieceProcessor(model_file=f"{prefix}.model")
        pieces = [sp.id_to_piece(i) for i in range(1, sp.get_piece_size())]  # 0 is sentencepiece's unk
        if form == "word_start":
            symbols = sorted(pieces)
        else:
            cores = sorted({p.lstrip(SPACE) for p in pieces} - {""})
            symbols = [c + sym for c in cores for sym in ("", CONTINUATION)]
        return cls(TokenTable([*RESERVED, *symbols]), f"{prefix}.model", form)

    def split(self, text: str) -> list[str]:
        pieces = self.sp.encode(" ".join(text.split()), out_type=str)
        if self.form == "word_start":
            return pieces
        words: list[list[str]] = []
        for piece in pieces:
            if piece.startswith(SPACE) or not words:
                words.append([])
            if piece.lstrip(SPACE):
                words[-1].append(piece.lstrip(SPACE))
        return [p + CONTINUATION * (i + 1 < len(w)) for w in words for i, p in enumerate(w)]

    def join(self, symbols: list[str]) -> str:
        return tokens_to_text(symbols, self.form)

    def meta(self) -> dict:
        return {**super().meta(), "form": self.form}

    def save(self, directory: str | Path) -> None:
        super().save(directory)
        target = Path(directory) / "bpe.model"
        if target.resolve() != self.model_path.resolve():
            target.write_bytes(self.model_path.read_bytes())


def guess_form(symbols: list[str]) -> str:
    """The symbol form of a token sequence: "word_start" when a symbol holds "▁" and none "@@".
    Right for whole transcripts, which in the "word_start" form begin with a "▁" piece; a sequence
    of neither mark reads as whole words ("continuation")."""
    if any(CONTINUATION in s for s in symbols) or not any(SPACE in s for s in symbols):
        return "continuation"
    return "word_start"


def tokens_to_text(symbols: Iterable[str], form: str | None = None) -> str:
    """Text of a token sequence in either symbol form (FORMS; None: `guess_form`), the text
    sherpa-onnx gives for "word_start" and funasr-onnx for "continuation". Reserved symbols but
    <unk> are dropped. Torch-free: narvox.runtime uses it too."""
    symbols = [s for s in symbols if s not in RESERVED or s == UNK]
    if (form or guess_form(symbols)) == "continuation":
        text = " ".join(symbols).replace(CONTINUATION + " ", "")
        return " ".join(text.replace(CONTINUATION, "").split())
    return " ".join("".join(symbols).replace(SPACE, " ").split())


def read_tokenizer_meta(directory: str | Path) -> dict:
    """The tokenizer.json that `Tokenizer.save` wrote, with the "form" of BPE tokenizers saved
    before there was a choice: "continuation"."""
    meta_path = Path(directory) / "tokenizer.json"
    if not meta_path.is_file():
        raise TextError(f"{directory}: no tokenizer.json (is it a tokenizer directory?)")
    meta = json.loads(meta_path.read_text())
    if meta["kind"] == "bpe":
        meta.setdefault("form", "continuation")
    return meta


def load_tokenizer(directory: str | Path) -> Tokenizer:
    """Load what `Tokenizer.save` wrote: tokens.txt plus tokenizer.json (and bpe.model)."""
    directory = Path(directory)
    meta = read_tokenizer_meta(directory)
    table = TokenTable.load(directory / "tokens.txt")
    if meta["kind"] == "char":
        return CharTokenizer(table)
    if meta["kind"] == "phone":
        return PhoneTokenizer(table, meta.get("language", "en-us"))
    if meta["kind"] == "bpe":
        return BpeTokenizer(table, directory / "bpe.model", meta["form"])
    raise TextError(f"{directory / 'tokenizer.json'}: unknown tokenizer kind '{meta['kind']}'")
