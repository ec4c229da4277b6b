# How jobs run: locally with a log file. On a cluster, point this at a wrapper with the same
# interface (`$train_cmd LOG command ...`), e.g. one that calls srun.
train_cmd="utils/run_log.sh"
decode_cmd="utils/run_log.sh"
