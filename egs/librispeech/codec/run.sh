#!/usr/bin/env bash
# The narvox codec on LibriSpeech (bring the corpus: set LIBRISPEECH in ../db.sh or the environment).
#   ./run.sh --ngpu 4                      # train-clean-100, DDP on 4 GPUs
# Stage 0 (data) is here; stages 1-6 are utils/codec.sh, shared with egs/synth_en.
set -euo pipefail
stage=0
stop_stage=100
nj=8
parts="train-clean-100 dev-clean test-clean test-other"
help_args="[utils/codec.sh options]"
. ./path.sh
. ../db.sh
forward_options=true  # the options this script does not define are utils/codec.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data from $LIBRISPEECH"
  local/data.sh --parts "$parts" "$LIBRISPEECH" data
fi

utils/codec.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" \
  --train-set train_clean_100 --valid-set dev_clean --test-sets "test_clean test_other" \
  "$@"
