# Environment of every synth_en recipe: the project's venv, C sorting, UTF-8 I/O, one BLAS thread
# per job (jobs are parallel already).
NARVOX_ROOT=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && cd ../.. && pwd)
[ -x "$NARVOX_ROOT/.venv/bin/python" ] && export PATH="$NARVOX_ROOT/.venv/bin:$PATH"
export LC_ALL=C
export PYTHONIOENCODING=UTF-8
export OMP_NUM_THREADS=1
