#!/usr/bin/env bash
# The narvox codec on the embedded synthetic English corpus: data, train, package, export,
# evaluate (STOI, PESQ, SI-SDR, mel distance, ASR intelligibility), dump tokens, pack (opt-in).
#   ./run.sh                                     # everything on the full corpus (~10 h); codec in exp/
#   ./run.sh --size mini --train-args "optim.max_steps=500"
#   ./run.sh --stage 6 --pack true               # replace the shipped codec with exp/codec/model
# Stage 0 (data) is here; stages 1-6 are utils/codec.sh (shared by every corpus), which takes
# every other option.
set -euo pipefail
stage=0
stop_stage=100
nj=2
size=full             # corpus: tiny | mini | full | hours
help_args="[utils/codec.sh options]"
. ./path.sh
forward_options=true  # the options this script does not define are utils/codec.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data ($size corpus in ../corpus/$size, linked from data/)"
  local/data.sh --size "$size" --nj "$nj" --link data "../corpus/$size"
fi

utils/codec.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" \
  --train-set train --valid-set dev --test-sets "test_seen test_unseen_voice" \
  --dump-sets "train dev test_seen test_unseen_voice" "$@"
