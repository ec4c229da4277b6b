"""narvox's exceptions. Each names the file, utterance or text it is about."""


class NarvoxError(Exception):
    """Base class of every error narvox raises on bad input."""


class AudioError(NarvoxError):
    """Audio that cannot be read or used: missing, corrupt, empty, non-finite, failing pipe."""


class DataDirError(NarvoxError):
    """A Kaldi data directory that is missing files or is inconsistent."""


class TextError(NarvoxError):
    """Text that cannot be normalised, phonemised or tokenised."""
