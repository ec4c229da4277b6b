"""What the commands share: the usage error and argument types that check values up front."""
from __future__ import annotations

import argparse
from pathlib import Path


class UsageError(Exception):
    """A bad argument or option value: reported on one line with exit status 2, as argparse does."""


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got '{value}'")
    return number


def positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not number > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a positive number, got '{value}'")
    return number


def existing_dir(value: str) -> Path:
    if not Path(value).is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such directory")
    return Path(value)
