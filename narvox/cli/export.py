"""`narvox export`: a trained model directory to ONNX bundles; `narvox quantize`: a bundle to its
int8 copy."""
from __future__ import annotations

from pathlib import Path

from narvox.cli.args import UsageError, existing_dir


def add_parsers(sub) -> None:
    p = sub.add_parser("export", help="export a trained model directory to ONNX bundles")
    p.add_argument("model_dir", type=existing_dir)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--voices", type=existing_dir, help="TTS: a data dir (text_phones, codec codes) whose "
                   "speakers become the bundle's shipped voices")
    p.add_argument("--sampling", nargs="*", default=[], metavar="KEY=VALUE",
                   help="TTS: the bundle's default sampling, e.g. cfg_scale=3.0 temperature=0.8")
    p.add_argument("--decoding", nargs="*", default=[], metavar="KEY=VALUE",
                   help="pseudo-AR TTS: the bundle's default span and refine_steps, e.g. span=0.2 refine_steps=3")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("quantize", help="copy a bundle with its graphs' weights in int8 (ONNX Runtime's "
                       "dynamic quantization): smaller, faster on CPU, a little less accurate")
    p.add_argument("bundle", help="a bundle directory or a shipped name (ctc, paraformer, ar, ...)")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_quantize)


def cmd_export(args) -> int:
    import torch
    from narvox import registry
    if not (args.model_dir / "model.pt").is_file():
        raise UsageError(f"{args.model_dir}: no trained model (model.pt) here; "
                         "train one first: cd egs/synth_en/asr && ./run.sh")
    kind = torch.load(args.model_dir / "model.pt", map_location="cpu", weights_only=False)["config"]["kind"]
    if registry.training_kind(kind, where=args.model_dir).family == "tts":
        from narvox.export.tts import export_tts
        from narvox.tts.sampling import SamplingOptions
        try:
            sampling = SamplingOptions.parse(args.sampling)
            decoding = {k: float(v) if k == "span" else int(v)
                        for k, _, v in (item.partition("=") for item in args.decoding)}
            print(export_tts(args.model_dir, args.out, args.voices, sampling=sampling, decoding=decoding))
        except ValueError as e:
            raise UsageError(str(e)) from e
        return 0
    from narvox.export.asr import export_model_dir
    for bundle in export_model_dir(args.model_dir, args.out):
        print(bundle)
    return 0


def cmd_quantize(args) -> int:
    from narvox.export.quantize import quantize_bundle
    print(quantize_bundle(args.bundle, args.out))
    return 0
