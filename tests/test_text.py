import json

import pytest

from narvox.errors import TextError
from narvox.text import (BpeTokenizer, CharTokenizer, PhoneTokenizer, TokenTable, load_tokenizer,
                         normalize)
from narvox.text.g2p import phonemize
from narvox.text.tokens import tokens_to_text

NORMALISER_CASES = [
    ("Hello, World!", "hello world"),
    ("I have 2 cats and 21 dogs.", "i have two cats and twenty one dogs"),
    ("He came 1st; she came 22nd.", "he came first she came twenty second"),
    ("Born in 1984, gone by the 1990s.", "born in nineteen eighty four gone by the nineteen nineties"),
    ("It costs $3.50 or £1.", "it costs three dollars fifty cents or one pound"),
    ("€2.01 in change", "two euros one cent in change"),
    ("Pi is 3.14", "pi is three point one four"),
    ("1,000,000 reasons", "one million reasons"),
    ("50% & more", "fifty percent and more"),
    ("Dr. Smith met Mr. Jones on Main St.", "doctor smith met mister jones on main saint"),
    ("No. 5 is no good", "number five is no good"),
    ("Apples, pears, etc.", "apples pears et cetera"),
    ("Use tools, e.g. hammers.", "use tools for example hammers"),
    ("It’s “quoted” — isn't it?", "it's quoted isn't it"),
    ("'Tis the 'season'", "tis the season"),
    ("MIXED Case TEXT", "mixed case text"),
    ("Room 101 at 7 o'clock", "room one hundred and one at seven o'clock"),
]


@pytest.mark.parametrize("written,spoken", NORMALISER_CASES)
def test_normaliser(written, spoken):
    assert normalize(written) == spoken


def test_normaliser_keeps_punctuation_for_tts():
    assert normalize("Wait, what? Yes!", keep_punctuation=True) == "wait , what ? yes !"


def test_g2p():
    (phones,) = phonemize(["Hello world, this is a test."])
    assert phones[:4] == ["h", "ə", "l", "ˈoʊ"]
    assert phones[8:11] == ["d", ",", "|"]
    assert phones.count("|") == 5 and "," in phones and phones[-1] == "."
    (digits,) = phonemize(["2"])
    assert digits == ["t", "ˈuː"]
    with pytest.raises(TextError, match="no pronounceable words: '...'"):
        phonemize(["..."])


def test_token_table_reserved_and_io(tmp_path):
    table = TokenTable(["<blk>", "<s>", "</s>", "<unk>", "a", "b"])
    table.save(tmp_path / "tokens.txt")
    assert (tmp_path / "tokens.txt").read_text().splitlines()[:2] == ["<blk> 0", "<s> 1"]
    assert TokenTable.load(tmp_path / "tokens.txt").symbols == table.symbols
    assert table["zzz"] == table.unk_id
    with pytest.raises(TextError, match="must start with"):
        TokenTable(["a", "<blk>"])
    (tmp_path / "bad.txt").write_text("<blk> 0\n<s> 2\n")
    with pytest.raises(TextError, match="without gaps"):
        TokenTable.load(tmp_path / "bad.txt")


def test_char_tokenizer_round_trip(tmp_path):
    tok = CharTokenizer.train(["hello world", "it's fine"])
    ids = tok.encode("it's   hello")
    assert tok.decode(ids) == "it's hello"
    assert tok.encode("q") == [tok.table.unk_id]
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).decode(ids) == "it's hello"


def test_bpe_tokenizer_round_trip(tmp_path):
    texts = [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(200)]
    tok = BpeTokenizer.train(texts, tmp_path / "train", vocab_size=48)
    assert tok.table.symbols[:4] == ["<blk>", "<s>", "</s>", "<unk>"]
    ids = tok.encode("the lazy fox jumps")
    assert len(ids) < len("the lazy fox jumps") and tok.decode(ids) == "the lazy fox jumps"
    # FunASR's convention: every piece but a word's last ends in @@
    pieces = tok.split("the lazy fox jumps")
    assert "".join(pieces).replace("@@", "") == "thelazyfoxjumps"
    assert sum(not p.endswith("@@") for p in pieces) == 4 and not pieces[-1].endswith("@@")
    assert tokens_to_text(["the", "la@@", "zy", "<s>"]) == "the lazy"
    assert tokens_to_text(["▁the", "▁la", "zy"]) == "the lazy"
    tok.save(tmp_path / "saved")
    again = load_tokenizer(tmp_path / "saved")
    assert again.encode("the lazy fox jumps") == ids


@pytest.mark.parametrize("form", ["word_start", "continuation"])
def test_bpe_symbol_forms_round_trip(tmp_path, form):
    """encode -> symbols -> tokens_to_text gives the normalised text back in both forms, and the
    saved tokenizer keeps its form."""
    written = ["The lazy dog's 2 friends jumped over 21 fences.", "Dr. Smith understands languages!"]
    spoken = [normalize(t) for t in written]
    tok = BpeTokenizer.train(spoken * 50, tmp_path / "train", vocab_size=40, form=form)
    for text in spoken:
        ids = tok.encode(text)
        symbols = [tok.table.symbols[i] for i in ids]
        assert tok.table.unk_id not in ids and len(symbols) > len(text.split())
        assert tokens_to_text(symbols) == tokens_to_text(symbols, form) == tok.decode(ids) == text
        starts = [s for s in symbols if s.startswith("▁")]
        continued = [s for s in symbols if s.endswith("@@")]
        if form == "word_start":  # sentencepiece's own pieces: each word starts with "▁"
            assert len(starts) == len(text.split()) and not continued
        else:  # every piece but a word's last ends in "@@"
            assert len(continued) == len(symbols) - len(text.split()) and not starts
    tok.save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved/tokenizer.json").read_text()) == {"kind": "bpe", "form": form}
    again = load_tokenizer(tmp_path / "saved")
    assert again.form == form and again.encode(spoken[1]) == tok.encode(spoken[1])


def test_tokens_to_text_of_pieces_without_word_marks():
    """Pieces with neither mark are whole words in the "continuation" form and one word in the
    "word_start" form (a sequence that starts inside a word); unstated, they read as whole words."""
    assert tokens_to_text(["ship", "ment"], "word_start") == "shipment"
    assert tokens_to_text(["ship", "ment"], "continuation") == tokens_to_text(["ship", "ment"]) == "ship ment"
    assert tokens_to_text(["ment", "▁ship", "ment", "</s>"], "word_start") == "ment shipment"


def test_bpe_tokenizer_saved_without_form_is_continuation(tmp_path):
    BpeTokenizer.train(["the lazy dog"] * 20, tmp_path, vocab_size=20).save(tmp_path)
    (tmp_path / "tokenizer.json").write_text('{"kind": "bpe"}')  # as saved before the forms
    assert load_tokenizer(tmp_path).form == "continuation"


def test_phone_tokenizer_round_trip(tmp_path):
    tok = PhoneTokenizer.train(["hello world", "a test"])
    ids = tok.encode("hello test")
    assert tok.table.unk_id not in ids
    assert tok.decode(ids) == "h ə l ˈoʊ | t ˈɛ s t"
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("hello test") == ids
