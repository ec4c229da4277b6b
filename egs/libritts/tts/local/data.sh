#!/usr/bin/env bash
# Kaldi data dirs from an extracted LibriTTS tree: data/<part with _> for each part.
set -euo pipefail
parts="train-clean-100 dev-clean test-clean"
help_args="<libritts-root> <data-dir>"
here=$(cd -P "$(dirname "$0")" && pwd)
. "$here/../path.sh"
. "$here/../../../utils/parse_options.sh"
[ $# -eq 2 ] || { echo "usage: $0 [--parts '...'] <libritts-root> <data-dir>" >&2; exit 1; }
python -m narvox.data.libritts --root "$1" --parts $parts --out "$2"
