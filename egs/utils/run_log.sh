#!/usr/bin/env bash
# Usage: utils/run_log.sh LOG command [args...]
# Runs a job locally, its output appended to LOG (and echoed). The same interface as Kaldi's
# run.pl, so a cluster wrapper (e.g. one calling srun) can stand in through cmd.sh.
set -euo pipefail
log=$1; shift
mkdir -p "$(dirname "$log")"
echo "# $* (started $(date -u +%FT%TZ))" >> "$log"
set +e
"$@" 2>&1 | tee -a "$log"
status=${PIPESTATUS[0]}
set -e
echo "# finished $(date -u +%FT%TZ) with status $status" >> "$log"
exit "$status"
