"""The shipped CTC bundle gives the same TEXT in sherpa-onnx as in narvox, not only the same tokens."""
from pathlib import Path

import pytest

from narvox.data import read_data_dir
from narvox.runtime import OnnxASR

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
