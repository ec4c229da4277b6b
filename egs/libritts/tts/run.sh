#!/usr/bin/env bash
# TTS on LibriTTS (bring the corpus: set LIBRITTS in ../db.sh or the environment), 16 kHz through
# the shipped narvox codec (or --codec DIR of one trained on LibriTTS: egs/librispeech/codec).
#   ./run.sh --ngpu 1                      # train-clean-100, one GPU, bf16
#   ./run.sh --ngpu 1 --models "ar masked par"  # every backend in turn, by its GPU config
#   ./run.sh --ngpu 4 --train-set train_960 ...   # after combining parts into data/train_960
# Stage 0 (data) is here; stages 1-7 are utils/tts.sh, shared with egs/synth_en.
set -euo pipefail
stage=0
stop_stage=100
parts="train-clean-100 dev-clean test-clean"
help_args="[utils/tts.sh options]"
. ./path.sh
. ../db.sh
forward_options=true  # the options this script does not define are utils/tts.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data from $LIBRITTS"
  local/data.sh --parts "$parts" "$LIBRITTS" data
fi

utils/tts.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" \
  --train-set train_clean_100 --valid-set dev_clean --test-sets test_clean \
  --config conf/valle_aligned_gpu.yaml --exp exp/valle_aligned_gpu \
  --model-configs "ar=valle_aligned_gpu masked=masked_aligned_gpu par=par_aligned_gpu" "$@"
