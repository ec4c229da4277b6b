#!/usr/bin/env bash
# ASR on the embedded synthetic English corpus: CTC/attention (the CTC recognizer and the AR
# baseline on one encoder) and Paraformer, from corpus generation to ONNX bundles.
#   ./run.sh                                  # everything, full corpus (~10 h); bundles in exp/
#   ./run.sh --size mini --stage 4 --stop-stage 6 --models paraformer
#   ./run.sh --stage 9 --pack true            # replace the shipped models with the bundles in exp/
# Stage 0 (data) is here; stages 1-9 are utils/asr.sh (shared by every corpus), which takes
# every other option (--models, --nbpe, --ngpu, --speed-perturb, --train-args, --pack, ...).
set -euo pipefail
stage=0
stop_stage=100
nj=2
size=full             # corpus: tiny | mini | full | hours
help_args="[utils/asr.sh options]"
. ./path.sh
forward_options=true  # the options this script does not define are utils/asr.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data ($size corpus in ../corpus/$size, linked from data/)"
  local/data.sh --size "$size" --nj "$nj" --link data "../corpus/$size"
fi

utils/asr.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" --nj "$nj" \
  --train-set train --valid-set dev --test-sets "test_seen test_unseen_voice" "$@"
