"""Text front ends: normaliser, G2P, token vocabularies."""
from narvox.text.normalize import normalize
from narvox.text.tokens import (BpeTokenizer, CharTokenizer, PhoneTokenizer, TokenTable, Tokenizer,
                                load_tokenizer)

__all__ = ["normalize", "BpeTokenizer", "CharTokenizer", "PhoneTokenizer", "TokenTable",
           "Tokenizer", "load_tokenizer"]
