"""The `narvox` command: one module per command group, each adding its parsers."""
from __future__ import annotations

import argparse
import logging
import sys

import narvox
from narvox.cli import codec, corpus, data, export, serve, synthesize, transcribe
from narvox.cli.args import UsageError
from narvox.errors import NarvoxError

log = logging.getLogger("narvox")


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line: the usage it prints first would bury them."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="narvox", description=narvox.__doc__)
    parser.add_argument("--version", action="version", version=f"narvox {narvox.__version__}")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="default INFO (WARNING for demo)")
    sub = parser.add_subparsers(dest="command", required=True)  # subparsers are _Parser too
    for group in (corpus, data, transcribe, synthesize, export, codec, serve):
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 some input failed (each named once on stderr), 2 bad usage."""
    args = build_parser().parse_args(argv)
    level = args.log_level or getattr(args, "default_log_level", "INFO")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except UsageError as e:
        print(f"narvox {args.command}: error: {e}", file=sys.stderr)
        return 2
    except NarvoxError as e:
        log.error("%s", e)
        return 1
    except ModuleNotFoundError as e:  # a runtime-only install (narvox[cpu]) running a torch command
        if not e.name or e.name.partition(".")[0] == "narvox":
            raise
        extra = "cpu" if e.name.startswith("onnxruntime") else "train"
        print(f"narvox {args.command}: needs {e.name}, which this install lacks: pip install 'narvox[{extra}]'",
              file=sys.stderr)
        return 1
