# Environment of every librispeech recipe (see egs/synth_en/path.sh).
NARVOX_ROOT=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && cd ../.. && pwd)
[ -x "$NARVOX_ROOT/.venv/bin/python" ] && export PATH="$NARVOX_ROOT/.venv/bin:$PATH"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=1
