"""`narvox codec`: dump a data dir's codec tokens, resynthesise a file, export, package."""
from __future__ import annotations

from pathlib import Path

from narvox.cli.args import UsageError, positive_float, positive_int
from narvox.errors import NarvoxError

WANTED = {"dump": "at least one DATA_DIR", "resynth": "IN OUT", "package": "CHECKPOINT", "export": "no inputs"}


def add_parsers(sub) -> None:
    p = sub.add_parser("codec", help="codec tokens: dump a data dir, resynthesise a file, export, package")
    p.add_argument("action", choices=["dump", "resynth", "export", "package"])
    p.add_argument("inputs", nargs="*", help="dump: DATA_DIR...; resynth: IN OUT; package: CHECKPOINT")
    p.add_argument("--codec", default="narvox", help="narvox | encodec | codec dir | bundle dir (onnx)")
    p.add_argument("--bandwidth", type=positive_float, help="kbps: picks the number of codebooks")
    p.add_argument("--runtime", default="torch", choices=["torch", "onnx"])
    p.add_argument("--batch-seconds", type=positive_float, default=60.0)
    p.add_argument("--num-threads", type=positive_int, default=2)
    p.add_argument("--out", type=Path, help="export/package: output directory")
    p.set_defaults(func=cmd_codec)


def _check_usage(args) -> None:
    count_ok = {"dump": len(args.inputs) >= 1, "resynth": len(args.inputs) == 2,
                "package": len(args.inputs) == 1, "export": not args.inputs}
    if not count_ok[args.action]:
        raise UsageError(f"codec {args.action} takes {WANTED[args.action]}, got {args.inputs}")
    if args.action in ("export", "package") and args.out is None:
        raise UsageError(f"codec {args.action} needs --out")
    if args.action == "dump":
        for data_dir in args.inputs:
            if not Path(data_dir).is_dir():
                raise UsageError(f"{data_dir}: no such directory")
    if args.action == "package" and not Path(args.inputs[0]).is_file():
        raise UsageError(f"{args.inputs[0]}: no such checkpoint file")


def _codec(args):
    """The torch codec, or its ONNX bundle on onnxruntime when asked (faster on CPU)."""
    if args.runtime == "onnx":
        from narvox.runtime import OnnxCodec
        return OnnxCodec(args.codec, bandwidth=args.bandwidth, num_threads=args.num_threads)
    import torch
    from narvox.codecs import load_codec
    torch.set_num_threads(args.num_threads)
    return load_codec(args.codec, bandwidth=args.bandwidth)


def cmd_codec(args) -> int:
    _check_usage(args)
    if args.action == "package":  # one checkpoint's weights, as the recipe's averaging writes them
        from narvox.recipes.average import average
        print(average([Path(args.inputs[0])], args.out))
        return 0
    try:
        codec = _codec(args)
    except NarvoxError as e:  # a codec that cannot be loaded is a bad --codec or --bandwidth
        raise UsageError(str(e)) from e
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
