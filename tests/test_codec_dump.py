import numpy as np
import pytest

from narvox.codecs import load_codec
from narvox.codecs.dump import CodesFile, codes_path, dump_codes
from narvox.codecs.narvox_codec import save_codec_dir
from narvox.data import read_data_dir
from narvox.errors import NarvoxError
from tests.test_codecs import tiny_model


@pytest.fixture(scope="module")
def codec(tmp_path_factory):
    return load_codec(save_codec_dir(tiny_model(), tmp_path_factory.mktemp("codec")))


def test_dump_stores_every_utterance_as_encoded_alone(make_data_dir, codec):
    _, path = make_data_dir(n=3)
    out = dump_codes(path, codec, batch_seconds=10.0)  # one batch of 0.5 to 1 s: padded rows
    assert out == codes_path(path, "narvox")
    codes = CodesFile(out)
    data = read_data_dir(path)
    assert sorted(codes.utts) == sorted(data.utt_ids)
    codes.check_codec(codec.identity())
    for utt in data.utt_ids:
        wav, _ = data.load_audio(utt)
        alone = codec.encode(wav).numpy()[0]
        assert codes[utt].shape == alone.shape == (4, codec.num_frames(len(wav)))
        # batched with zero padding after the end: the codec codes each row as alone
        np.testing.assert_array_equal(codes[utt], alone)


def test_dump_resumes_after_a_kill(make_data_dir, codec):
    _, path = make_data_dir(n=3)
    out = dump_codes(path, codec, batch_seconds=1.0)
    complete = out.read_bytes()
    index = CodesFile(out).index
    # a kill after two records, in the middle of writing the third
    second_end = sorted(off + 2 * q * f for off, q, f in index.values())[1]
    out.write_bytes(complete[: second_end + 7])
    with pytest.raises(NarvoxError, match="incomplete"):
        CodesFile(out)
    dump_codes(path, codec, batch_seconds=1.0)
    resumed = CodesFile(out)
    assert sorted(resumed.utts) == sorted(index)
    for utt in index:
        np.testing.assert_array_equal(resumed[utt], _decode_from(complete, index[utt]))


def _decode_from(blob: bytes, entry) -> np.ndarray:
    offset, q, f = entry
    return np.frombuffer(blob[offset: offset + 2 * q * f], dtype="<u2").reshape(q, f)


def test_dump_of_many_tiny_utterances(make_data_dir, codec, tmp_path):
    """More utterances in a batch than samples in the longest: still encoded (not refused as a
    transposed array), each as alone."""
    from narvox.audio import write_audio
    from narvox.data import DataDir, write_data_dir
    wavs = {f"spk-{i:03d}": np.full(5 + i % 10, 0.1 * (i % 5), np.float32) for i in range(40)}
    for utt, wav in wavs.items():
        write_audio(tmp_path / "wav" / f"{utt}.wav", wav, 16000)
    data = DataDir(wav_scp={u: str(tmp_path / "wav" / f"{u}.wav") for u in wavs},
                   text={u: "a" for u in wavs}, utt2spk={u: "spk" for u in wavs})
    codes = CodesFile(dump_codes(write_data_dir(data, tmp_path / "data"), codec))
    for utt in wavs:
        wav, _ = read_data_dir(tmp_path / "data").load_audio(utt)
        np.testing.assert_array_equal(codes[utt], codec.encode(wav).numpy()[0])


def test_codes_of_another_codec_are_refused(make_data_dir, codec, tmp_path):
    _, path = make_data_dir(n=1)
    dump_codes(path, codec)
    other = load_codec(save_codec_dir(tiny_model(seed=1), tmp_path / "other"))
    with pytest.raises(NarvoxError, match="another codec"):
        CodesFile(codes_path(path, "narvox")).check_codec(other.identity())
    with pytest.raises(NarvoxError, match="another codec"):
        dump_codes(path, other)


def test_unreadable_audio_names_the_utterance(make_data_dir, codec):
    data, path = make_data_dir(n=2)
    (path / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in data.utt_ids))
    with pytest.raises(NarvoxError, match="spka-000"):
        dump_codes(path, codec)
