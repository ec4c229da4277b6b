#!/usr/bin/env bash
# Transcribe a data directory with funasr-onnx's Paraformer class from a narvox Paraformer bundle
# and compare with narvox's own transcripts. funasr-onnx pins numpy<=1.26.4, so it gets its own
# venv (.venv-funasr) with nothing of narvox installed.
#   tools/check_funasr_onnx.sh BUNDLE_DIR DATA_DIR OUT_DIR
set -euo pipefail
bundle=$1 data=$2 out=$3
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$root/.venv-funasr
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet funasr-onnx soundfile
fi
mkdir -p "$out"
"$venv/bin/python" - "$bundle" "$data" "$out" <<'PY'
import sys
from funasr_onnx import Paraformer
import soundfile as sf
bundle, data, out = sys.argv[1:]
model = Paraformer(bundle, batch_size=1, quantize=False)
raw_lines, text_lines = [], []
for line in open(f"{data}/wav.scp"):
    utt, path = line.split(maxsplit=1)
    wav, sr = sf.read(path.strip(), dtype="float32")
    # the tokens funasr-onnx decodes (its own features, its own argmax and truncation) ...
    feats, lens = model.extract_feat([wav])
    outputs = model.infer(feats, lens)
    tokens = model.decode(outputs[0], outputs[1])[0]
    words = " ".join(tokens).replace("@@ ", "").replace("@@", "")
    raw_lines.append(f"{utt} {' '.join(words.split())}\n")
    # ... and the text its English post-processing makes of them (capital "I", abbreviations)
    text = model(wav)[0]["preds"]
    text = text[0] if isinstance(text, (tuple, list)) else text
    text_lines.append(f"{utt} {' '.join(text.split())}\n")
open(f"{out}/funasr_onnx.txt", "w").writelines(raw_lines)
open(f"{out}/funasr_onnx_postprocessed.txt", "w").writelines(text_lines)
PY
"$root/.venv/bin/python" -m narvox transcribe --model "$bundle" --format text \
  $(awk '{print $2}' "$data/wav.scp") | awk -F'\t' '{print $2}' > "$out/narvox.texts"
paste -d' ' <(awk '{print $1}' "$data/wav.scp") "$out/narvox.texts" | sed 's/ *$//' > "$out/narvox.txt"
sed -i 's/ *$//' "$out/funasr_onnx.txt" "$out/funasr_onnx_postprocessed.txt"
n=$(wc -l < "$out/narvox.txt")
same=$(paste -d'\n' "$out/narvox.txt" "$out/funasr_onnx.txt" | paste - - | awk -F'\t' '$1==$2' | wc -l)
post=$(paste -d'\n' "$out/narvox.txt" "$out/funasr_onnx_postprocessed.txt" | paste - - | awk -F'\t' 'tolower($1)==tolower($2)' | wc -l)
echo "funasr-onnx vs narvox: $same of $n decoded transcripts identical; $post of $n identical after funasr-onnx's English post-processing (compared case-insensitively)"
