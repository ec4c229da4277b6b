#!/usr/bin/env bash
# Usage: utils/need.sh STAGE PATH...
# Fails, saying what to run, when a stage's inputs from earlier stages are missing (as on a fresh
# clone with --stage N), before the stage's own tools fail on them less clearly.
set -euo pipefail
stage=$1; shift
earlier=$([ "$stage" -gt 1 ] && echo "stages 0-$((stage - 1))" || echo "stage 0")
for path in "$@"; do
  if [ ! -e "$path" ]; then
    echo "stage $stage needs $path (run $earlier first: ./run.sh --stop-stage $((stage - 1)) ...)" >&2
    exit 1
  fi
done
