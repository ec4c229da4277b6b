"""Transcribe a data directory with sherpa-onnx from narvox's CTC and Paraformer bundles and
count the transcripts (texts, not token lists) identical to narvox.runtime's.

  .venv/bin/python tools/check_sherpa_onnx.py narvox/pretrained/asr egs/synth_en/asr/data/test_seen
"""
import sys

import sherpa_onnx

from narvox.data import read_data_dir
from narvox.runtime import OnnxASR


def main(bundles: str, data_dir: str) -> None:
    data = read_data_dir(data_dir)
    for name in ("ctc", "paraformer"):
        b = f"{bundles}/{name}"
        if name == "ctc":
            rec = sherpa_onnx.OfflineRecognizer.from_wenet_ctc(model=f"{b}/model.onnx", tokens=f"{b}/tokens.txt", num_threads=2)
        else:
            rec = sherpa_onnx.OfflineRecognizer.from_paraformer(paraformer=f"{b}/model.onnx", tokens=f"{b}/tokens.txt", num_threads=2)
        ours = OnnxASR(b)
        same, diffs = 0, []
        for utt in data.utt_ids:
            audio, _ = data.load_audio(utt, 16000)
            stream = rec.create_stream()
            stream.accept_waveform(16000, audio)
            rec.decode_stream(stream)
            # sherpa-onnx's own text, as its users get it: word boundaries are part of what is checked
            theirs = " ".join(stream.result.text.split())
            mine = ours.text(ours.recognize([ours.frontend(audio)])[0][0])
            same += theirs == mine
            if theirs != mine:
                diffs.append((utt, theirs, mine))
        print(f"sherpa-onnx {name}: {same} of {len(data.utt_ids)} transcripts identical to narvox")
        for d in diffs[:5]:
            print("  ", d)


if __name__ == "__main__":
    main(*sys.argv[1:3])
