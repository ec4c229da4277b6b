#!/usr/bin/env bash
# The TTS recipe's stages after data preparation, shared by every corpus.
# A corpus's run.sh prepares Kaldi data dirs under data/ (stage 0) and calls this script.
#   stage 1 codec tokens | 2 phones | 3 train | 4 package | 5 evaluate | 6 export | 7 pack
set -euo pipefail
stage=1
stop_stage=100
ngpu=0                # 0 = CPU; N > 0 = N GPUs with Lightning DDP (bf16)
train_threads=2       # CPU threads of the training process
config=conf/valle_aligned.yaml
exp=exp/valle_aligned
models=""             # shipped backends to build in turn (ar | masked | par), each by its config in
                      # model_configs, in exp/<config name>; replaces --config/--exp
model_configs="ar=valle_aligned masked=masked_aligned par=par_aligned"  # backend -> conf/<name>.yaml
train_set=train
valid_set=dev
test_sets=""
codec=narvox          # the codec whose tokens the model learns and speaks through (name or directory)
language=en-us        # espeak-ng voice of the phonemizer
lang=data/lang_phone  # the phone vocabulary, built from the training set
n_best=1              # checkpoints (best validation loss) averaged into the model
eval_utts=""          # evaluate on the first N utterances of each test set (default: all)
judges="ctc pocketsphinx"  # ASR judges of intelligibility (narvox ASR models or pocketsphinx)
sampling=""           # the bundle's default sampling, KEY=VALUE ... (stages 5-6; default: the config's `sampling`)
decoding=""           # pseudo-AR: the bundle's default span and refine_steps, KEY=VALUE ... (stages 5-6; default: the config's `decoding`)
curve_utts=30         # dev utterances judged per curve checkpoint
voices_set=""         # data dir whose speakers become the bundle's shipped voices (default: the train set)
pack=false            # true: stage 7 copies the bundle over the shipped one in pack_dir (opt-in only)
pack_dir=""           # default: the package's narvox/pretrained/tts/<pack_name>
pack_name=""          # the shipped name (default: the backend's, ar | masked | par)
train_args=""         # config overrides, e.g. "optim.max_steps=100 data.max_seconds=20"
help_args=""
. ./path.sh
. ./cmd.sh
all_args=("$@")
. utils/parse_options.sh

if [ -n "$models" ]; then  # data stages once, then stages 3-7 per backend (later options win)
  if [ "$stage" -le 2 ]; then
    "$0" "${all_args[@]}" --models "" --stop-stage $((stop_stage < 2 ? stop_stage : 2))
  fi
  for m in $models; do
    name=$(echo " $model_configs " | sed -n "s/.* $m=\([^ ]*\) .*/\1/p")
    [ -n "$name" ] || { echo "$0: unknown model '$m' (model_configs: $model_configs)" >&2; exit 1; }
    [ "$stop_stage" -lt 3 ] || "$0" "${all_args[@]}" --models "" --stage $((stage > 3 ? stage : 3)) \
      --config "conf/$name.yaml" --exp "exp/$name" --pack-name "$m"
  done
  exit 0
fi

pack_name=${pack_name:-$(python -c "import sys, yaml; kind = yaml.safe_load(open(sys.argv[1]))['model']['kind']
print({'valle': 'ar'}.get(kind, kind))" "$config")}
pack_dir=${pack_dir:-$NARVOX_ROOT/narvox/pretrained/tts/$pack_name}
sampling=${sampling:-$(python -c "import sys, yaml; s = yaml.safe_load(open(sys.argv[1])).get('sampling') or {}
print(' '.join(f'{k}={v}' for k, v in s.items()))" "$config")}
decoding=${decoding:-$(python -c "import sys, yaml; s = yaml.safe_load(open(sys.argv[1])).get('decoding') or {}
print(' '.join(f'{k}={v}' for k, v in s.items()))" "$config")}
model=$exp/model
bundle=$exp/onnx
decoding_options() {  # the config's decoding defaults as narvox.recipes.tts_eval options (span=0.2 -> --span 0.2)
  for kv in $decoding; do printf -- '--%s %s ' "$(echo "${kv%%=*}" | tr _ -)" "${kv#*=}"; done
}

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
      --codec "$codec" --out "$exp/eval_$s" ${eval_utts:+--max-utts $eval_utts} --judges $judges \
      --sampling $sampling $(decoding_options)
    { cat "$exp/eval_$s.md"; echo; } >> "$exp/RESULTS.md"
  done
  if ls "$exp"/checkpoints/curve-step*.ckpt > /dev/null 2>&1; then
    echo "stage 5: learning curve on data/$valid_set"
    python -m narvox.recipes.tts_eval --curve "$exp" --data data/$valid_set --codec "$codec" \
      --max-utts "$curve_utts" --judges ctc --sampling $sampling >> "$exp/RESULTS.md"
  fi
  echo "stage 5: results in $exp/RESULTS.md"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  utils/need.sh 6 "$model/model.pt"
  echo "stage 6: export $model to the ONNX bundle $bundle (voices: data/${voices_set:-$train_set})"
  python -m narvox export "$model" --out "$bundle" --voices "data/${voices_set:-$train_set}" --sampling $sampling \
    --decoding $decoding
  du -sh "$bundle"
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ] && ! $pack; then
  echo "stage 7: not packing, the bundle stays in $bundle (to ship it as '$pack_name': ./run.sh --stage 7 --pack true)"
elif [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  utils/need.sh 7 "$bundle/narvox.json"
  echo "stage 7: pack $bundle into $pack_dir"
  rm -rf "$pack_dir" && mkdir -p "$pack_dir"
  cp "$bundle"/* "$pack_dir"/
  # loads it as an app would: refuses a bundle whose codec is not the one it names
  python -c "import sys; from narvox.runtime.tts import OnnxTTS; OnnxTTS(sys.argv[1])" "$pack_dir"
  du -sh "$pack_dir"
fi
