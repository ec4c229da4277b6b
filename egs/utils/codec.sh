#!/usr/bin/env bash
# The codec recipe's stages after data preparation, shared by every corpus.
# A corpus's run.sh prepares Kaldi data dirs under data/ (stage 0) and calls this script.
#   stage 1 train | 2 package | 3 export | 4 evaluate | 5 dump tokens | 6 pack
set -euo pipefail
stage=1
stop_stage=100
ngpu=0                # 0 = CPU; N > 0 = N GPUs with Lightning DDP
train_threads=2       # CPU threads of the training process (path.sh sets 1 for parallel jobs)
config=conf/codec.yaml
exp=exp/codec
train_set=train
valid_set=dev
test_sets=""
dump_sets=""          # data dirs whose codec tokens stage 5 dumps (default: all of the above)
eval_utts=""          # evaluate on the first N utterances of each test set (default: all)
asr=ctc               # narvox ASR model that judges intelligibility (stage 4); none to skip
teacher=exp/teacher_ctc  # ASR model dir whose encoder features codebook 1 is distilled from; none: no
                      # distillation. Missing: recovered from the shipped CTC bundle (a corpus's
                      # own ASR recipe's exp/<model>/final is the better teacher where it exists)
teacher_bundle=ctc    # the shipped ASR bundle a missing teacher is recovered from ...
teacher_config=""     # ... and the ASR config it was trained with (default: synth_en's ctc_attention.yaml)
train_args=""         # config overrides, e.g. "optim.max_steps=100 data.batch_size=4"
pack=false            # true: stage 6 copies the codec over the shipped one in pack_dir (opt-in only)
pack_dir=""           # default: the package's codec, narvox/pretrained/codec/narvox
help_args=""
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
pack_dir=${pack_dir:-$NARVOX_ROOT/narvox/pretrained/codec/narvox}
teacher_config=${teacher_config:-$NARVOX_ROOT/egs/synth_en/asr/conf/ctc_attention.yaml}

model=$exp/model
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  utils/need.sh 1 data/$train_set data/$valid_set
  echo "stage 1: train the codec (log: $exp/train.log)"
  overrides="$train_args"
  if [ "$teacher" != none ]; then
    if [ ! -f "$teacher/model.pt" ]; then
      echo "stage 1: recover the teacher $teacher from the shipped $teacher_bundle bundle"
      python "$NARVOX_ROOT/tools/bundle_weights.py" "$teacher_bundle" "$teacher_config" "$teacher"
    fi
    overrides="teacher=$teacher $overrides"
  fi
  if [ "$ngpu" -gt 0 ]; then
    overrides="trainer.accelerator=gpu trainer.devices=$ngpu trainer.strategy=ddp_find_unused_parameters_true $overrides"
  fi
  # shellcheck disable=SC2086
  $train_cmd $exp/train.log env OMP_NUM_THREADS=$train_threads python -m narvox.recipes.train --task codec --config "$config" --exp-dir "$exp" \
    --train data/$train_set --valid data/$valid_set --set $overrides
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  utils/need.sh 2 "$exp/checkpoints/last.ckpt"
  # the checkpoint with the best validation STOI, before or after the GAN starts: averaging
  # would mix codebooks that EMA and dead-code restarts moved apart
  echo "stage 2: package the checkpoint of $exp with the best validation STOI as $model"
  python -m narvox.recipes.average --exp-dir "$exp" --n-best 1 --out "$model"
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  utils/need.sh 3 "$model/model.pt"
  echo "stage 3: export the ONNX encoder and decoder into $model"
  python -m narvox codec export --codec "$model" --out "$model"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  utils/need.sh 4 "$model/encoder.onnx"
  : > "$exp/RESULTS.md"
  for s in $test_sets; do
    echo "stage 4: evaluate on $s"
    $decode_cmd $exp/log/eval_$s.log python -m narvox.recipes.codec_eval --codec "$model" --data data/$s \
      --out "$exp/eval_$s" --asr "$asr" ${eval_utts:+--max-utts $eval_utts}
    { cat "$exp/eval_$s.md"; echo; } >> "$exp/RESULTS.md"
  done
  python -m narvox.recipes.codec_eval --curve "$exp" >> "$exp/RESULTS.md"
  echo "stage 4: results in $exp/RESULTS.md"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  utils/need.sh 5 "$model/encoder.onnx"
  for s in ${dump_sets:-$train_set $valid_set $test_sets}; do
    echo "stage 5: codec tokens of data/$s"
    $decode_cmd $exp/log/dump_$s.log python -m narvox codec dump data/$s --codec "$model" --runtime onnx
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ] && ! $pack; then
  echo "stage 6: not packing, the codec stays in $model (to copy it into $pack_dir: ./run.sh --stage 6 --pack true)"
elif [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  files=("$model"/{codec.yaml,model.pt,encoder.onnx,decoder.onnx,narvox.json})
  utils/need.sh 6 "${files[@]}"
  echo "stage 6: pack $model into $pack_dir"
  rm -rf "$pack_dir" && mkdir -p "$pack_dir"
  cp "${files[@]}" "$pack_dir"/
  du -sh "$pack_dir"
fi
