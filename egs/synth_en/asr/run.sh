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
voices=all            # every English voice of the engines (base: the 20 the codec and TTS learn)
robust=true           # also score telephone, noisy and reverberant copies of the test sets
help_args="[utils/asr.sh options]"
. ./path.sh
forward_options=true  # the options this script does not define are utils/asr.sh's
. utils/parse_options.sh

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  corpus=../corpus/$size$([ "$voices" = base ] || echo "_$voices")
  echo "stage 0: data ($size corpus, $voices voices, in $corpus, linked from data/)"
  local/data.sh --size "$size" --voices "$voices" --nj "$nj" --link data "$corpus"
fi

test_sets="test_seen test_unseen_voice"
if $robust; then
  # _tel: an 8 kHz telephone line; _noisy: 10 dB SNR of noise unseen in training; _reverb: rooms
  # of RT60 0.3-0.8 s (narvox/recipes/asr_prep.py degrade)
  for s in $test_sets; do
    for c in tel noisy reverb; do
      if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
        echo "stage 0: data/${s}_$c"
        python -m narvox.recipes.asr_prep degrade --data data/$s --condition $c --out data/${s}_$c --nj "$nj"
      fi
      test_sets="$test_sets ${s}_$c"
    done
  done
fi

utils/asr.sh --stage $((stage > 1 ? stage : 1)) --stop-stage "$stop_stage" --nj "$nj" \
  --train-set train --valid-set dev --test-sets "$test_sets" "$@"
