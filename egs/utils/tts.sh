#!/usr/bin/env bash
# The TTS recipe's stages after data preparation, shared by every corpus.
# A corpus's run.sh prepares Kaldi data dirs under data/ (stage 0) and calls this script.
#   stage 1 codec tokens | 2 phones | 3 train | 4 package | 5 evaluate
set -euo pipefail
stage=1
stop_stage=100
ngpu=0                # 0 = CPU; N > 0 = N GPUs with Lightning DDP (bf16)
train_threads=2       # CPU threads of the training process
config=conf/valle_aligned.yaml
exp=exp/valle_aligned
train_set=train
valid_set=dev
test_sets=""
codec=narvox          # the codec whose tokens the model learns and speaks through (name or directory)
language=en-us        # espeak-ng voice of the phonemizer
lang=data/lang_phone  # the phone vocabulary, built from the training set
n_best=1              # checkpoints (best validation loss) averaged into the model
eval_utts=""          # evaluate on the first N utterances of each test set (default: all)
judges="ctc pocketsphinx"  # ASR judges of intelligibility (narvox ASR models or pocketsphinx)
curve_utts=30         # dev utterances judged per curve checkpoint
train_args=""         # config overrides, e.g. "optim.max_steps=100 data.max_seconds=20"
help_args=""
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

model=$exp/model

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for s in $train_set $valid_set $test_sets; do
    utils/need.sh 1 data/$s
    echo "stage 1: codec tokens of data/$s ($codec; resumes a partial dump)"
    $decode_cmd $exp/log/dump_$s.log python -m narvox codec dump data/$s --codec "$codec" --runtime onnx
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  for s in $train_set $valid_set $test_sets; do
    echo "stage 2: phones of data/$s"
    python -m narvox.recipes.tts_prep phones --data data/$s --language "$language"
  done
  python -m narvox.recipes.tts_prep tokens --data data/$train_set --language "$language" --out "$lang"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  utils/need.sh 3 "$lang/tokens.txt" data/$train_set/text_phones data/$valid_set/text_phones
  echo "stage 3: train $config (log: $exp/train.log)"
  overrides="$train_args"
  if [ "$ngpu" -gt 0 ]; then
    overrides="trainer.accelerator=gpu trainer.devices=$ngpu trainer.strategy=ddp trainer.precision=bf16-mixed $overrides"
  fi
  # shellcheck disable=SC2086
  $train_cmd $exp/train.log env OMP_NUM_THREADS=$train_threads python -m narvox.recipes.train --task tts \
    --config "$config" --exp-dir "$exp" --train data/$train_set --valid data/$valid_set --lang "$lang" \
    --codec "$codec" --set $overrides
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  utils/need.sh 4 "$exp/checkpoints/last.ckpt"
  echo "stage 4: average the $n_best best checkpoints of $exp into $model"
  python -m narvox.recipes.average --exp-dir "$exp" --n-best "$n_best" --out "$model"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  utils/need.sh 5 "$model/model.pt"
  : > "$exp/RESULTS.md"
  for s in $test_sets; do
    echo "stage 5: evaluate on $s"
    $decode_cmd $exp/log/eval_$s.log python -m narvox.recipes.tts_eval --model "$model" --data data/$s \
      --codec "$codec" --out "$exp/eval_$s" ${eval_utts:+--max-utts $eval_utts} --judges $judges
    { cat "$exp/eval_$s.md"; echo; } >> "$exp/RESULTS.md"
  done
  if ls "$exp"/checkpoints/curve-step*.ckpt > /dev/null 2>&1; then
    echo "stage 5: learning curve on data/$valid_set"
    python -m narvox.recipes.tts_eval --curve "$exp" --data data/$valid_set --codec "$codec" \
      --max-utts "$curve_utts" --judges ctc >> "$exp/RESULTS.md"
  fi
  echo "stage 5: results in $exp/RESULTS.md"
fi
