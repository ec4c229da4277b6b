#!/usr/bin/env bash
# Kaldi data dirs from an extracted LibriSpeech tree: data/<part with _> for each part.
set -euo pipefail
parts="train-clean-100 dev-clean test-clean test-other"
help_args="<librispeech-root> <data-dir>"
here=$(cd -P "$(dirname "$0")" && pwd)
. "$here/../path.sh"
. "$here/../../../utils/parse_options.sh"
[ $# -eq 2 ] || { echo "usage: $0 [--parts '...'] <librispeech-root> <data-dir>" >&2; exit 1; }
python -m narvox.data.librispeech --root "$1" --parts $parts --out "$2"
