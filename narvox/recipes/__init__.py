"""Lightning training recipes, driven by egs/*/run.sh."""
