import numpy as np
import pytest

from narvox.audio import write_audio
from narvox.data import DataDir, write_data_dir


def tone(seconds: float = 1.0, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def make_data_dir(tmp_path):
    """A small valid data directory with real audio: 2 speakers x n utterances."""
    def make(n: int = 3, name: str = "data") -> tuple[DataDir, object]:
        wav, text, utt2spk = {}, {}, {}
        for spk in ("spka", "spkb"):
            for i in range(n):
                utt = f"{spk}-{i:03d}"
                path = tmp_path / "wav" / f"{utt}.flac"
                write_audio(path, tone(0.5 + 0.25 * i), 16000)
                wav[utt], text[utt], utt2spk[utt] = str(path), f"hello world {i}", spk
        data = DataDir(wav_scp=wav, text=text, utt2spk=utt2spk)
        return data, write_data_dir(data, tmp_path / name)
    return make


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A generated synthetic corpus of ~1 minute (needs the Debian speech engines)."""
    import shutil
    if not shutil.which("espeak-ng"):
        pytest.skip("speech engines missing")
    from narvox.data.synth_en import generate
    out = tmp_path_factory.mktemp("corpus")
    generate(out, hours=0.02, nj=2)
    return out


@pytest.fixture(scope="session")
def tiny_dumps(tiny_corpus, tmp_path_factory):
    """fbank dumps of the tiny corpus's train and dev sets and a small BPE vocabulary."""
    from narvox.data.feats_dump import dump_fbank
    from narvox.data import read_data_dir
    from narvox.text.tokens import BpeTokenizer
    out = tmp_path_factory.mktemp("dumps")
    from narvox.features import FbankConfig
    kaldi = FbankConfig.preset("kaldi")  # what CTC/attention models take
    train = dump_fbank(tiny_corpus / "train", out / "train", nj=1, config=kaldi)
    valid = dump_fbank(tiny_corpus / "dev", out / "dev", nj=1, config=kaldi)
    BpeTokenizer.train(read_data_dir(tiny_corpus / "train").text.values(), out / "lang", 48).save(out / "lang")
    return train, valid, out / "lang"
