#!/usr/bin/env bash
# Synthesises the embedded English corpus and writes four Kaldi data directories:
#   <out>/train  <out>/dev  <out>/test_seen  <out>/test_unseen_voice   (audio under <out>/wav)
# Sizes: tiny (~1 min, tests), mini (~0.5 h, demo/CI), full (~10 h, shipped models), or hours.
# Voices: base (20 training voices: codec, TTS) or all (~700: ASR); see narvox/data/synth_en.py.
# Re-running reuses audio that is already there. With --link DIR, DIR/<split> link to them (what a
# recipe's stage 0 wants: data/train, data/dev, ...).
set -euo pipefail
size=mini
nj=2
seed=0
voices=base
link=""
help_args="<out-dir>"
here=$(cd -P "$(dirname "$0")" && pwd)
. "$here/../path.sh"
. "$here/../../utils/parse_options.sh"
if [ $# -ne 1 ]; then echo "usage: $0 [--size mini|full|tiny|HOURS] [--voices base|all] [--nj N] [--seed S] <out-dir>" >&2; exit 1; fi
out=$1
bash "$NARVOX_ROOT/tools/install_system_deps.sh"
python -m narvox corpus --out "$out" --size "$size" --nj "$nj" --seed "$seed" --voices "$voices"
if [ -n "$link" ]; then
  mkdir -p "$link"
  target=$(cd "$out" && pwd)
  for s in train dev test_seen test_unseen_voice; do ln -sfn "$target/$s" "$link/$s"; done
fi
