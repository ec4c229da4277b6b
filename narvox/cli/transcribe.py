"""`narvox transcribe`: speech to text, printed file by file as each batch finishes."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from narvox import registry
from narvox.bundle import shipped
from narvox.cli.args import UsageError, positive_int
from narvox.errors import NarvoxError

PROGRESS_MIN_FILES = 20  # fewer files finish too soon for a progress bar to help


def add_parsers(sub) -> None:
    p = sub.add_parser("transcribe", help="speech to text with a shipped or trained model")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--model", default="ctc", help=f"{' | '.join(shipped('asr'))} | bundle dir | model dir")
    p.add_argument("--method", default="greedy", help=f"{' | '.join(_asr_methods())}, as the model offers; a model "
                   "dir of several heads also takes <head>_<method> (attention_beam)")
    p.add_argument("--format", default="text", choices=["text", "json", "srt"],
                   help="text: 'path<TAB>text' per file; json: one object per file, failed ones "
                        "included; srt: subtitles (on stdout, or one .srt per file in --output-dir)")
    p.add_argument("--output-dir", type=Path, help="srt: write DIR/<name>.srt per file (needed for several files)")
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--num-threads", type=positive_int, default=2)
    p.set_defaults(func=cmd_transcribe)


def _asr_methods() -> list[str]:
    return list(dict.fromkeys(m for kind in registry.BUNDLE_KINDS.values() if kind.family == "asr"
                              for m in kind.methods))


def _srt_paths(args) -> dict[str, Path]:
    """source -> .srt file to write, when subtitles go to --output-dir (refusing what clashes)."""
    if args.output_dir is None:
        if args.format == "srt" and len(args.files) > 1:
            raise UsageError("--format srt with several files needs --output-dir DIR (one .srt per file)")
        return {}
    if args.format != "srt":
        raise UsageError("--output-dir is for --format srt")
    owners: dict[Path, Path] = {}  # .srt file -> the input it is for
    for f in args.files:
        path = args.output_dir / f"{f.stem}.srt"
        if owners.setdefault(path, f) != f:
            raise UsageError(f"{owners[path]} and {f} would both be written to {path}")
    return {str(f): path for path, f in owners.items()}


def _emit(text: str, end: str = "\n") -> None:
    """Write a result now, above the progress bar, so a long run shows its output as it goes."""
    tqdm.write(text, file=sys.stdout, end=end)
    sys.stdout.flush()


def cmd_transcribe(args) -> int:
    from narvox.asr.api import ASR
    from narvox.asr.subtitles import to_srt
    srt_paths = _srt_paths(args)
    try:
        asr = ASR.from_pretrained(args.model, method=args.method, num_threads=args.num_threads)
    except NarvoxError as e:  # a model that cannot be loaded is a bad --model value
        raise UsageError(str(e)) from e
    if srt_paths:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    failed = 0
    results = asr.transcribe_iter([str(f) for f in args.files], batch_size=args.batch_size)
    progress = tqdm(results, total=len(args.files), unit="file", file=sys.stderr,  # None: on a terminal only
                    disable=True if len(args.files) < PROGRESS_MIN_FILES else None)
    with logging_redirect_tqdm(), progress:  # log lines go above the bar, not through it
        for r in progress:
            failed += r.error is not None
            if args.format == "json":
                _emit(json.dumps(asdict(r), ensure_ascii=False))
            elif r.error:
                continue  # ASR has logged it, naming the file
            elif r.source in srt_paths:
                srt_paths[r.source].write_text(to_srt(r), encoding="utf-8")
                _emit(str(srt_paths[r.source]))
            elif args.format == "srt":
                _emit(to_srt(r), end="")
            else:
                _emit(f"{r.source}\t{r.text}")
    return 1 if failed else 0
