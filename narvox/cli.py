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


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _srt(t) -> str:
    """One cue per utterance, from its first token to just after its last."""
    if not t.text:
        return ""
    start, end = t.timestamps[0], t.timestamps[-1] + 0.5
    return f"1\n{_srt_time(start)} --> {_srt_time(end)}\n{t.text}\n"


def cmd_transcribe(args) -> int:
    import json
    from dataclasses import asdict
    from narvox.asr.api import ASR
    asr = ASR.from_pretrained(args.model, method=args.method, num_threads=args.num_threads)
    results = asr.transcribe([str(f) for f in args.files], batch_size=args.batch_size)
    for r in results:
        if r.error:
            print(f"{r.source}: ERROR {r.error}", file=sys.stderr)
        elif args.format == "json":
            print(json.dumps(asdict(r), ensure_ascii=False))
        elif args.format == "srt":
            print(f"# {r.source}\n{_srt(r)}")
        else:
            print(f"{r.source}\t{r.text}")
    return 1 if any(r.error for r in results) else 0


def cmd_export(args) -> int:
    from narvox.export.asr import export_model_dir
    for bundle in export_model_dir(args.model_dir, args.out):
        print(bundle)
    return 0


def _codec(args):
    """The torch codec, or its ONNX bundle on onnxruntime when asked (faster on CPU)."""
    if args.runtime == "onnx":
        from narvox.codecs import PRETRAINED
        from narvox.runtime import OnnxCodec
        path = Path(args.codec)
        path = path if (path / "narvox.json").is_file() else PRETRAINED / args.codec
        return OnnxCodec(path, bandwidth=args.bandwidth, num_threads=args.num_threads)
    import torch
    from narvox.codecs import load_codec
    torch.set_num_threads(args.num_threads)
    return load_codec(args.codec, bandwidth=args.bandwidth)


def cmd_codec(args) -> int:
    wanted = {"dump": "at least one DATA_DIR", "resynth": "IN OUT", "package": "CHECKPOINT"}
    count_ok = {"dump": len(args.inputs) >= 1, "resynth": len(args.inputs) == 2,
                "package": len(args.inputs) == 1, "export": not args.inputs}
    if not count_ok[args.action]:
        raise NarvoxError(f"codec {args.action} takes {wanted.get(args.action, 'no inputs')}, got {args.inputs}")
    if args.action in ("export", "package") and args.out is None:
        raise NarvoxError(f"codec {args.action} needs --out")
    if args.action == "package":
        from narvox.recipes.codec_train import package
        print(package(args.inputs[0], args.out))
        return 0
    codec = _codec(args)
    if args.action == "dump":
        from narvox.codecs.dump import CodesFile, dump_codes
        for data_dir in args.inputs:
            path = dump_codes(data_dir, codec, batch_seconds=args.batch_seconds)
            print(f"{path}: {len(CodesFile(path))} utterances, {codec.name} codec")
    elif args.action == "resynth":
        import numpy as np
        from narvox.audio import read_audio, write_audio
        wav, sr = read_audio(args.inputs[0], sample_rate=codec.sample_rate)
        audio = np.asarray(codec.decode(codec.encode(wav)))[0, : len(wav)]
        write_audio(args.inputs[1], audio, codec.sample_rate)
        print(f"{args.inputs[1]}: {len(wav) / sr:.2f} s through {codec.name} at {codec.n_codebooks} codebooks")
    elif args.action == "export":
        from narvox.export.codec import export_codec
        print(export_codec(codec, args.out))
    return 0


def _demo_codec(test_dir: Path) -> None:
    from narvox.codecs import PRETRAINED
    from narvox.recipes.codec_eval import evaluate, markdown
    if not (PRETRAINED / "narvox" / "narvox.json").is_file():
        log.warning("no shipped codec in %s: train it with egs/synth_en/codec/run.sh", PRETRAINED)
        return
    print("\nShipped narvox codec, decoded audio against the original (ONNX Runtime, 2 threads):\n")
    print(markdown(evaluate(PRETRAINED / "narvox", test_dir, depths=[2, 4, 8], asr_model="ctc")))


def cmd_demo(args) -> int:
    from narvox.data.synth_en import format_table, generate, summarize
    out = DEFAULT_CORPUS_ROOT / args.size_name
    log.info("building the %s synthetic corpus in %s", args.size_name, out)
    generate(out, hours=_hours(args.size_name), nj=args.nj)
    print(f"\nnarvox {narvox.__version__}: synthetic English corpus '{args.size_name}' in {out}\n")
    print(format_table(summarize(out)))
    from narvox.asr.api import PRETRAINED
    from narvox.recipes.asr_decode import decode
    shipped = sorted(p.name for p in PRETRAINED.iterdir()) if PRETRAINED.is_dir() else []
    if not shipped:
        log.warning("no shipped ASR models in %s: train them with egs/synth_en/asr/run.sh", PRETRAINED)
        return 0
    _demo_codec(out / "test_unseen_voice")
    print("\nShipped recognizers on the corpus's test sets (ONNX Runtime, 2 threads):\n")
    print("| model | test set | utterances | WER % | CER % | RTF |\n|---|---|---|---|---|---|")
    for name in shipped:
        for test_set in ("test_seen", "test_unseen_voice"):
            r = decode(name, out / test_set, num_threads=2)
            print(f"| {name} | {test_set} | {r['utterances']} | {100 * r['wer']:.2f} | "
                  f"{100 * r['cer']:.2f} | {r['rtf']:.4f} |")
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

    p = sub.add_parser("transcribe", help="speech to text with a shipped or trained model")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--model", default="paraformer", help="paraformer | ctc | bundle dir | model dir")
    p.add_argument("--method", default="greedy", help="greedy | beam (ctc, attention bundles)")
    p.add_argument("--format", default="text", choices=["text", "json", "srt"])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-threads", type=int, default=2)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("export", help="export a trained model directory to ONNX bundles")
    p.add_argument("model_dir", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("codec", help="codec tokens: dump a data dir, resynthesise a file, export, package")
    p.add_argument("action", choices=["dump", "resynth", "export", "package"])
    p.add_argument("inputs", nargs="*", help="dump: DATA_DIR...; resynth: IN OUT; package: CHECKPOINT")
    p.add_argument("--codec", default="narvox", help="narvox | encodec | codec dir | bundle dir (onnx)")
    p.add_argument("--bandwidth", type=float, help="kbps: picks the number of codebooks")
    p.add_argument("--runtime", default="torch", choices=["torch", "onnx"])
    p.add_argument("--batch-seconds", type=float, default=60.0)
    p.add_argument("--num-threads", type=int, default=2)
    p.add_argument("--out", type=Path, help="export/package: output directory")
    p.set_defaults(func=cmd_codec)

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
