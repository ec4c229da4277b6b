"""CTC bundles give the same TEXT in sherpa-onnx as in narvox, not only the same tokens."""
import json
from pathlib import Path

import pytest
import torch

from narvox.asr.build import build_model, save_model
from narvox.data import read_data_dir
from narvox.export.asr import export_model_dir
from narvox.runtime import OnnxASR
from narvox.text.tokens import SPACE, BpeTokenizer

CTC = Path(__file__).resolve().parents[1] / "narvox/pretrained/asr/ctc"


# Known defect (issue 8): sherpa-onnx's CTC text joins symbols verbatim, turning only a leading "▁"
# into a space, and the shipped model was trained on "@@" pieces, whose mark says whether the NEXT
# piece continues the word. No relabelling of its ids gives "▁" word starts (the same id, e.g. "u@@",
# starts "understand" and sits inside "language"); a CTC model trained on "▁" pieces does.
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="the shipped CTC model has '@@' labels, whose words sherpa-onnx glues together")
def test_sherpa_onnx_ctc_text_equals_narvox(tiny_corpus):
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    rec = sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model=str(CTC / "model.onnx"),
                                                       tokens=str(CTC / "tokens.txt"), num_threads=1)
    ours = OnnxASR(CTC, num_threads=1)
    data = read_data_dir(tiny_corpus / "test_seen")
    theirs, mine = [], []
    for utt in data.utt_ids[:4]:
        audio, _ = data.load_audio(utt, 16000)
        stream = rec.create_stream()
        stream.accept_waveform(16000, audio)
        rec.decode_stream(stream)
        theirs.append(stream.result.text)
        mine.append(ours.text(ours.recognize([ours.frontend(audio)])[0][0]))
    assert all(" " in t for t in mine)  # several words each, so word boundaries are compared
    assert theirs == mine


@pytest.fixture(scope="module")
def word_start_ctc(tiny_corpus, tmp_path_factory):
    """A randomly initialised tiny CTC model on a "word_start" BPE vocabulary, exported as a bundle.
    Untrained, it still emits varied pieces, so its transcripts have words of several pieces."""
    root = tmp_path_factory.mktemp("word_start_ctc")
    texts = read_data_dir(tiny_corpus / "train").text.values()
    tokenizer = BpeTokenizer.train(texts, root / "lang", vocab_size=64, form="word_start")
    tokenizer.save(root / "model")
    torch.manual_seed(0)
    config = {"kind": "ctc_attention", "decoder": {"n_layers": 0},
              "encoder": dict(d_model=32, n_heads=2, d_ff=64, n_layers=1, subsampling_channels=8)}
    model = build_model(config, len(tokenizer)).eval()
    model.encoder.cmvn.neg_mean.fill_(-12.0)  # log-fbank of speech is ~5..20: normalise it as training would
    model.encoder.cmvn.inv_stddev.fill_(0.25)
    save_model(root / "model", model, config)
    (bundle,) = export_model_dir(root / "model", root / "onnx")
    return bundle


def test_word_start_ctc_bundle_text_in_sherpa_onnx_equals_narvox(word_start_ctc, tiny_corpus):
    """What retraining the shipped CTC model on "word_start" pieces gives: sherpa-onnx's text,
    word boundaries included, is narvox's."""
    sherpa_onnx = pytest.importorskip("sherpa_onnx")
    assert json.loads((word_start_ctc / "narvox.json").read_text())["symbol_form"] == "word_start"
    rec = sherpa_onnx.OfflineRecognizer.from_wenet_ctc(
        model=str(word_start_ctc / "model.onnx"), tokens=str(word_start_ctc / "tokens.txt"), num_threads=1)
    ours = OnnxASR(word_start_ctc, num_threads=1)
    data = read_data_dir(tiny_corpus / "test_seen")
    for utt in data.utt_ids:
        audio, _ = data.load_audio(utt, 16000)
        stream = rec.create_stream()
        stream.accept_waveform(16000, audio)
        rec.decode_stream(stream)
        # An untrained model sits near decision boundaries, so sherpa-onnx's own fbank flips a few
        # of its tokens (see test_asr_models); the text of the tokens sherpa-onnx found is compared.
        # It writes a symbol's leading "▁" as " " in its tokens as in its text.
        pieces = [s.replace(" ", SPACE) for s in stream.result.tokens]
        assert " " in stream.result.text.strip() and not all(p.startswith(SPACE) for p in pieces)
        assert ours.text([ours.tokens[p] for p in pieces]) == " ".join(stream.result.text.split())
