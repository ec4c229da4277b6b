"""The `narvox` command."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import narvox
from narvox.errors import NarvoxError

log = logging.getLogger("narvox")
DEFAULT_CORPUS_ROOT = Path("egs/synth_en/corpus")


def _hours(value: str) -> float:
    from narvox.data.synth_en import SIZES
    if value in SIZES:
        return SIZES[value]
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be one of {sorted(SIZES)} or hours, got '{value}'")


def cmd_corpus(args) -> int:
    from narvox.data.synth_en import format_table, generate, summarize
    generate(args.out, hours=args.size, seed=args.seed, nj=args.nj)
    print(format_table(summarize(args.out)))
    return 0


def cmd_data(args) -> int:
    from narvox.data import fix_data_dir, read_data_dir, validate_data_dir
    status = 0
    for directory in args.dirs:
        if args.action == "validate":
            problems = validate_data_dir(directory)
            for p in problems:
                print(f"{directory}/{p}")
            print(f"{directory}: {'OK' if not problems else f'{len(problems)} problems'}")
            status |= bool(problems)
        elif args.action == "fix":
            print(f"{directory}: {fix_data_dir(directory)}")
        else:
            data = read_data_dir(directory)
            print(f"{directory}: {len(data)} utterances, {len(data.speakers)} speakers, "
                  f"{data.total_seconds() / 3600:.2f} h")
    return status


def cmd_demo(args) -> int:
    from narvox.data.synth_en import format_table, generate, summarize
    out = DEFAULT_CORPUS_ROOT / args.size_name
    log.info("building the %s synthetic corpus in %s", args.size_name, out)
    generate(out, hours=_hours(args.size_name), nj=args.nj)
    print(f"\nnarvox {narvox.__version__}: synthetic English corpus '{args.size_name}' in {out}\n")
    print(format_table(summarize(out)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="narvox", description=narvox.__doc__)
    parser.add_argument("--version", action="version", version=f"narvox {narvox.__version__}")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("corpus", help="generate the synthetic English corpus (Kaldi data dirs)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=_hours, default="mini", help="tiny | mini | full | hours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=int, default=2)
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("data", help="validate, fix or summarise Kaldi data directories")
    p.add_argument("action", choices=["validate", "fix", "info"])
    p.add_argument("dirs", nargs="+", type=Path)
    p.set_defaults(func=cmd_data)

    p = sub.add_parser("demo", help="the README's demo on the embedded corpus")
    p.add_argument("--size", dest="size_name", default="mini", choices=["tiny", "mini", "full"])
    p.add_argument("--nj", type=int, default=2)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except NarvoxError as e:
        log.error("%s", e)
        return 1
