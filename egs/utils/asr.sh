#!/usr/bin/env bash
# The ASR recipe's stages after data preparation, shared by every corpus (like ESPnet's asr.sh).
# A corpus's run.sh prepares Kaldi data dirs under data/ (stage 0) and calls this script.
#   stage 1 tokens | 2 fbank | 3 CMVN | 4 train | 5 average | 6 decode | 7 score | 8 export | 9 pack
set -euo pipefail
stage=1
stop_stage=100
nj=2
ngpu=0                # 0 = CPU; N > 0 = N GPUs with Lightning DDP
models="ctc_attention paraformer"
nbpe=256
speed_perturb=false   # train on 0.9/1.0/1.1 speed copies (Kaldi style)
train_set=train
valid_set=dev
test_sets=""
train_args=""         # config overrides, e.g. "trainer.max_epochs=1 data.max_seconds=60"
pack=false            # true: stage 9 copies the bundles over the shipped models in pack_dir (opt-in only)
pack_dir=""           # default: the package's models, narvox/pretrained/asr
help_args=""
. ./path.sh
. ./cmd.sh
. utils/parse_options.sh
pack_dir=${pack_dir:-$NARVOX_ROOT/narvox/pretrained/asr}

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then utils/need.sh 1 data/$train_set; fi
if $speed_perturb; then
  if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
    echo "stage 1: speed perturbation of $train_set"
    python -m narvox.recipes.asr_prep perturb --data data/$train_set --factors 0.9 1.0 1.1 --out data/${train_set}_sp
  fi
  train_set=${train_set}_sp
fi

# CTC/attention models use the Kaldi/WeNet fbank (what sherpa-onnx's WeNet CTC computes),
# Paraformer the FunASR one (what funasr-onnx and sherpa-onnx's Paraformer compute).
fbank_of() { [ "$1" = paraformer ] && echo funasr || echo kaldi; }
# Likewise their BPE symbols: CTC/attention models learn sentencepiece's "▁" word starts, the only
# form whose text sherpa-onnx's WeNet CTC gets right; Paraformer FunASR's "@@" continuations, which
# funasr-onnx reads. A model cannot be relabelled from one form to the other, so each form has its
# own lang dir.
form_of() { [ "$1" = paraformer ] && echo continuation || echo word_start; }
lang_of() { echo "data/lang_bpe${nbpe}_$1"; }  # $1: a form

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  for form in $(for m in $models; do form_of $m; done | sort -u); do
    echo "stage 1: BPE tokens ($nbpe, $form form)"
    python -m narvox.recipes.asr_prep tokens --data data/$train_set --kind bpe --vocab-size "$nbpe" \
      --form "$form" --out "$(lang_of $form)"
  done
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  utils/need.sh 2 data/$train_set data/$valid_set
  for preset in $(for m in $models; do fbank_of $m; done | sort -u); do
    for s in $train_set $valid_set; do
      echo "stage 2: $preset fbank of $s"
      $train_cmd exp/log/dump_${preset}_$s.log python -m narvox.recipes.asr_prep dump --data data/$s \
        --fbank "$preset" --out dump/$preset/$s --nj "$nj"
    done
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [[ " $models " == *" paraformer "* ]]; then
  utils/need.sh 3 dump/funasr/$train_set
  echo "stage 3: global CMVN of LFR features (am.mvn)"
  python -m narvox.recipes.asr_prep cmvn --dump dump/funasr/$train_set --lfr-m 7 --lfr-n 6 \
    --out dump/funasr/$train_set/am.mvn
fi

# Stage 4 runs every model through the one trainer (narvox.recipes.train), which resumes from
# exp/$m/checkpoints/last.ckpt. --ngpu N runs Lightning's DDP on N GPUs of this machine. On several
# machines, start one process per GPU with the scheduler and tell Lightning the shape, e.g. 2 nodes
# x 4 GPUs (Lightning reads the ranks from SLURM's or torchrun's environment):
#   srun --nodes 2 --ntasks-per-node 4 --gpus-per-node 4 python -m narvox.recipes.train --task asr \
#     --config conf/$m.yaml --exp-dir exp/$m --train ... --valid ... --lang ... \
#     --set trainer.accelerator=gpu trainer.devices=4 trainer.num_nodes=2 trainer.strategy=ddp trainer.precision=bf16-mixed
#   torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint $head_node:29500 \
#     -m narvox.recipes.train --task asr ... (the same arguments)   # run on every node
if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  for m in $models; do
    feats=dump/$(fbank_of $m)
    lang=$(lang_of $(form_of $m))
    utils/need.sh 4 $feats/$train_set $feats/$valid_set "$lang/tokens.txt" \
      $([ "$m" = paraformer ] && echo dump/funasr/$train_set/am.mvn)
    echo "stage 4: train $m (log: exp/$m/train.log)"
    overrides="$train_args"
    if [ "$ngpu" -gt 0 ]; then
      overrides="trainer.accelerator=gpu trainer.devices=$ngpu trainer.strategy=ddp trainer.precision=bf16-mixed $overrides"
    fi
    $train_cmd exp/$m/train.log python -m narvox.recipes.train --task asr --config conf/$m.yaml --exp-dir exp/$m \
      --train $feats/$train_set --valid $feats/$valid_set --lang "$lang" \
      $([ "$m" = paraformer ] && echo --cmvn dump/funasr/$train_set/am.mvn) \
      ${overrides:+--set $overrides}
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  for m in $models; do
    utils/need.sh 5 exp/$m/checkpoints
    n_best=$(python -c "import yaml; print(yaml.safe_load(open('conf/$m.yaml')).get('average', {}).get('n_best', 5))")
    echo "stage 5: average the $n_best best checkpoints of $m"
    python -m narvox.recipes.average --exp-dir exp/$m --n-best "$n_best" --out exp/$m/final
  done
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  for m in $models; do
    utils/need.sh 6 exp/$m/final
    methods="greedy"
    [ "$m" = ctc_attention ] && methods="greedy beam attention_greedy attention_beam attention_rescore"
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
    utils/need.sh 8 exp/$m/final
    echo "stage 8: export $m to ONNX bundles in exp/$m/onnx"
    narvox export exp/$m/final --out exp/$m/onnx
  done
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ] && ! $pack; then
  echo "stage 9: not packing, the bundles stay in exp/*/onnx (to copy them into $pack_dir: ./run.sh --stage 9 --pack true)"
elif [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  for m in $models; do
    # CTC/attention ships both its bundles: CTC alone, and with the decoder (AR beam, rescoring)
    names=$([ "$m" = paraformer ] && echo paraformer || echo "ctc attention")
    for name in $names; do
      bundle=exp/$m/onnx/$name
      utils/need.sh 9 "$bundle"
      echo "stage 9: pack $bundle -> $pack_dir/$name"
      rm -rf "$pack_dir/$name"
      mkdir -p "$pack_dir"
      cp -r "$bundle" "$pack_dir/$name"
      du -sh "$pack_dir/$name"
    done
  done
fi
