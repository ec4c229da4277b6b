#!/usr/bin/env bash
# ASR on the embedded synthetic English corpus: CTC/attention (CTC + the AR baseline) and
# Paraformer, from corpus generation to ONNX bundles.
#   ./run.sh                           # everything, full corpus
#   ./run.sh --size mini --stage 4 --stop-stage 6
set -euo pipefail
stage=0
stop_stage=100
nj=2
ngpu=0                # 0 = CPU; N > 0 = N GPUs with Lightning DDP
size=full             # corpus: tiny | mini | full | hours
models="ctc_attention paraformer"
nbpe=256
speed_perturb=false   # 0.9/1.0/1.1 copies of train (Kaldi style)
test_sets="test_seen test_unseen_voice"
train_args=""         # config overrides, e.g. "trainer.max_epochs=1 data.max_seconds=60"
help_args=""
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh

corpus=../corpus/$size
train_set=train
$speed_perturb && train_set=train_sp
lang=data/lang_bpe${nbpe}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "stage 0: data ($size corpus in $corpus)"
  local/data.sh --size "$size" --nj "$nj" "$corpus"
  mkdir -p data
  for s in train dev $test_sets; do ln -sfn "../$corpus/$s" "data/$s"; done
  if $speed_perturb; then
    python -m narvox.recipes.asr_prep perturb --data data/train --factors 0.9 1.0 1.1 --out data/train_sp
  fi
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "stage 1: BPE tokens ($nbpe)"
  python -m narvox.recipes.asr_prep tokens --data data/train --kind bpe --vocab-size "$nbpe" --out "$lang"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "stage 2: fbank features"
  for s in $train_set dev $test_sets; do
    $train_cmd exp/log/dump_$s.log python -m narvox.recipes.asr_prep dump --data data/$s --out dump/$s --nj "$nj"
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  echo "stage 3: global CMVN of LFR features (am.mvn)"
  python -m narvox.recipes.asr_prep cmvn --dump dump/$train_set --lfr-m 7 --lfr-n 6 --out dump/$train_set/am.mvn
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for m in $models; do
    echo "stage 4: train $m (log: exp/$m/train.log)"
    overrides="$train_args"
    if [ "$ngpu" -gt 0 ]; then
      overrides="trainer.accelerator=gpu trainer.devices=$ngpu trainer.strategy=ddp trainer.precision=bf16-mixed $overrides"
    fi
    $train_cmd exp/$m/train.log python -m narvox.recipes.train --config conf/$m.yaml --exp-dir exp/$m \
      --train dump/$train_set --valid dump/dev --lang "$lang" --cmvn dump/$train_set/am.mvn \
      ${overrides:+--set $overrides}
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for m in $models; do
    n_best=$(python -c "import yaml; print(yaml.safe_load(open('conf/$m.yaml')).get('average', {}).get('n_best', 5))")
    echo "stage 5: average the $n_best best checkpoints of $m"
    python -m narvox.recipes.average --exp-dir exp/$m --n-best "$n_best" --out exp/$m/final
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for m in $models; do
    methods="greedy"
    [ "$m" = ctc_attention ] && methods="greedy beam attention_greedy attention_beam"
    for s in $test_sets; do
      for method in $methods; do
        echo "stage 6: decode $s with $m ($method)"
        $decode_cmd exp/$m/decode_${s}_${method}/decode.log python -m narvox.recipes.asr_decode \
          --model exp/$m/final --data data/$s --method "$method" --out exp/$m/decode_${s}_${method}
      done
    done
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  echo "stage 7: score -> exp/RESULTS.md"
  python -m narvox.recipes.asr_decode --results exp
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  for m in $models; do
    echo "stage 8: export $m to ONNX bundles in exp/$m/onnx"
    narvox export exp/$m/final --out exp/$m/onnx
  done
fi
