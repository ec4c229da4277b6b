#!/usr/bin/env bash
# TTS on the embedded synthetic English corpus: data, codec tokens, phones, train, package,
# evaluate (judges, similarity, robustness, learning curve), export, pack (opt-in).
#   ./run.sh                                             # VALL-E, aligned conditioning, CPU size
#   ./run.sh --config conf/valle_prefix.yaml --exp exp/valle_prefix
#   ./run.sh --models masked                             # the masked NAR backend (conf/masked_aligned.yaml)
#   ./run.sh --models "ar masked" --stage 3              # both backends in turn, on data already prepared
#   ./run.sh --size mini --train-args "optim.max_steps=200"
#   ./run.sh --stage 7 --pack true                       # ship exp/valle_aligned/onnx as 'ar'
#   ./run.sh --ngpu 1 --config conf/valle_aligned_gpu.yaml --exp exp/valle_aligned_gpu
# Stage 0 (data) is here; stages 1-7 are utils/tts.sh (shared by every corpus), which takes
# every other option.
set -euo pipefail
stage=0
stop_stage=100
nj=2
size=full             # corpus: tiny | mini | full | hours
help_args="[utils/tts.sh options]"
. ./path.sh
forward_options=true  # the options this script does not define are utils/tts.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data ($size corpus in ../corpus/$size, linked from data/)"
  local/data.sh --size "$size" --nj "$nj" --link data "../corpus/$size"
fi

utils/tts.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" \
  --train-set train --valid-set dev --test-sets "test_seen test_unseen_voice" "$@"
