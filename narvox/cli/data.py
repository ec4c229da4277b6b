"""`narvox data`: validate, fix or summarise Kaldi data directories."""
from __future__ import annotations

from narvox.cli.args import existing_dir


def add_parsers(sub) -> None:
    p = sub.add_parser("data", help="validate, fix or summarise Kaldi data directories")
    p.add_argument("action", choices=["validate", "fix", "info"])
    p.add_argument("dirs", nargs="+", type=existing_dir)
    p.set_defaults(func=cmd_data)


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
