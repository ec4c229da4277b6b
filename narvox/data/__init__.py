"""Kaldi data directories and what reads them for training."""
from narvox.data.kaldi import DataDir, Segment, combine, compute_utt2dur, read_data_dir, write_data_dir
from narvox.data.rules import FixReport, Problem, fix_data_dir, validate_data_dir

__all__ = ["DataDir", "FixReport", "Problem", "Segment", "combine", "compute_utt2dur",
           "fix_data_dir", "read_data_dir", "validate_data_dir", "write_data_dir"]
