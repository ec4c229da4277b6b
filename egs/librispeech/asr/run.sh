#!/usr/bin/env bash
# ASR on LibriSpeech (bring the corpus: set LIBRISPEECH in ../db.sh or the environment).
#   ./run.sh --ngpu 4                      # train-clean-100, DDP on 4 GPUs
#   ./run.sh --train-set train_960 ...     # after combining parts into data/train_960
# Stage 0 (data) is here; stages 1-9 are utils/asr.sh, shared with egs/synth_en.
set -euo pipefail
stage=0
stop_stage=100
nj=8
parts="train-clean-100 dev-clean test-clean test-other"
help_args="[utils/asr.sh options]"
. ./path.sh
. ../db.sh
forward_options=true  # the options this script does not define are utils/asr.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data from $LIBRISPEECH"
  local/data.sh --parts "$parts" "$LIBRISPEECH" data
fi

utils/asr.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" --nj "$nj" \
  --train-set train_clean_100 --valid-set dev_clean --test-sets "test_clean test_other" \
  --nbpe 5000 "$@"
