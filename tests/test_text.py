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


def test_phone_tokenizer_round_trip(tmp_path):
    tok = PhoneTokenizer.train(["hello world", "a test"])
    ids = tok.encode("hello test")
    assert tok.table.unk_id not in ids
    assert tok.decode(ids) == "h ə l ˈoʊ | t ˈɛ s t"
    tok.save(tmp_path)
    assert load_tokenizer(tmp_path).encode("hello test") == ids
