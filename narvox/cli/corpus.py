"""`narvox corpus` and `narvox demo`: the synthetic English corpus, and the README's demo on it."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import narvox
from narvox.bundle import PRETRAINED, shipped
from narvox.cli.args import positive_int

DEFAULT_CORPUS_ROOT = Path("egs/synth_en/corpus")
EXAMPLES = 3  # transcripts the demo shows beside their references
DEMO_SENTENCES = ("The quick brown fox jumps over the lazy dog.",
                  "Speech synthesis and recognition run on two processor cores.")
DEMO_SPEECH_DIR = Path("demo_speech")  # where the demo leaves what it synthesized, to listen to


def _hours(value: str) -> float:
    from narvox.data.synth_en import SIZES
    if value in SIZES:
        return SIZES[value]
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be one of {sorted(SIZES)} or hours, got '{value}'")


def add_parsers(sub) -> None:
    p = sub.add_parser("corpus", help="generate the synthetic English corpus (Kaldi data dirs)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--size", type=_hours, default="mini", help="tiny | mini | full | hours")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nj", type=positive_int, default=2)
    p.add_argument("--voices", choices=["base", "all"], default="base",
                   help="base: 20 training voices (codec, TTS); all: every English voice of the engines, ~700 (ASR)")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("demo", help="the README's demo on the embedded corpus")
    p.add_argument("--size", dest="size_name", default="mini", choices=["tiny", "mini", "full"])
    p.add_argument("--nj", type=positive_int, default=2)
    p.set_defaults(func=cmd_demo, default_log_level="WARNING")  # tables on the console, not logs


def cmd_corpus(args) -> int:
    from narvox.data.synth_en import format_table, generate, summarize
    generate(args.out, hours=args.size, seed=args.seed, nj=args.nj, voices=args.voices)
    print(format_table(summarize(args.out)))
    return 0


def _demo_codec(test_dir: Path) -> None:
    from narvox.recipes.codec_eval import evaluate, markdown
    if "narvox" not in shipped("codec"):
        print(f"\nNo shipped codec in {PRETRAINED / 'codec'}: train it with egs/synth_en/codec/run.sh")
        return
    print("\nShipped narvox codec, decoded audio against the original (ONNX Runtime, 2 threads):\n")
    print(markdown(evaluate(shipped("codec")["narvox"], test_dir, depths=[2, 4, 8], asr_model="ctc")))


def _demo_tts() -> None:
    """Speaks DEMO_SENTENCES with every shipped TTS model and transcribes them back with the
    shipped CTC recognizer."""
    import time
    from narvox.audio import write_audio
    synthesizers = sorted(shipped("tts"))
    if not synthesizers:
        print(f"\nNo shipped TTS models in {PRETRAINED / 'tts'}: train one with egs/synth_en/tts/run.sh")
        return
    asr = narvox.ASR.from_pretrained("ctc", num_threads=2)
    print(f"\nShipped synthesizers ({', '.join(synthesizers)}) speak two sentences in their first voice; "
          f"the shipped ctc recognizer transcribes them back (ONNX Runtime, 2 threads; WAVs in {DEMO_SPEECH_DIR}/)\n")
    print("| model | voice | sentence | seconds | RTF | heard by ctc |\n|---|---|---|---|---|---|")
    DEMO_SPEECH_DIR.mkdir(exist_ok=True)
    for name in synthesizers:
        tts = narvox.TTS.from_pretrained(name, num_threads=2)
        start = time.perf_counter()
        speech = tts.synthesize(list(DEMO_SENTENCES), seed=0)
        rtf = (time.perf_counter() - start) / sum(s.duration for s in speech)
        for k, s in enumerate(speech):
            write_audio(DEMO_SPEECH_DIR / f"{name}_{k}.wav", s.audio, s.sample_rate)
            heard = asr.transcribe((s.audio, s.sample_rate)).text
            print(f"| {name} | {tts.voices[0]} | {s.text} | {s.duration:.2f} | {rtf:.3f} | {heard} |")


def _first_lines(path: Path) -> dict[str, str]:
    """utterance -> text of the first EXAMPLES lines of a Kaldi-style `utt text` file."""
    lines = path.read_text(encoding="utf-8").splitlines()[:EXAMPLES]
    return dict(line.split(" ", 1) for line in lines)  # decode writes "utt text", even for no text


def cmd_demo(args) -> int:
    from narvox.data.synth_en import format_table, generate, summarize
    out = DEFAULT_CORPUS_ROOT / args.size_name
    print(f"Building the {args.size_name} synthetic corpus in {out} (audio already there is reused)")
    generate(out, hours=_hours(args.size_name), nj=args.nj)
    print(f"\nnarvox {narvox.__version__}: synthetic English corpus '{args.size_name}' in {out}\n")
    print(format_table(summarize(out)))
    from narvox.recipes.asr_decode import decode
    recognizers = sorted(shipped("asr"))
    if not recognizers:
        print(f"\nNo shipped ASR models in {PRETRAINED / 'asr'}: train them with egs/synth_en/asr/run.sh")
        return 0
    _demo_codec(out / "test_unseen_voice")
    print(f"\nShipped recognizers ({', '.join(recognizers)}) on the corpus's test sets (ONNX Runtime, 2 threads).")
    print("They are small demo models trained here in about an hour; for better ones, train on the "
          "full corpus: cd egs/synth_en/asr && ./run.sh\n")
    print("| model | test set | utterances | WER % | CER % | RTF |\n|---|---|---|---|---|---|")
    examples = {}  # model -> utterance -> hypothesis, on test_seen
    with tempfile.TemporaryDirectory() as decode_dir:
        for name in recognizers:
            for test_set in ("test_seen", "test_unseen_voice"):
                hyps = Path(decode_dir) / name / test_set
                r = decode(name, out / test_set, out=hyps, num_threads=2)
                print(f"| {name} | {test_set} | {r['utterances']} | {100 * r['wer']:.2f} | "
                      f"{100 * r['cer']:.2f} | {r['rtf']:.4f} |")
                if test_set == "test_seen":
                    references = _first_lines(hyps / "ref.txt")
                    examples[name] = _first_lines(hyps / "hyp.txt")
    width = max(len("reference"), *map(len, recognizers))
    print(f"\nFirst {EXAMPLES} utterances of test_seen:")
    for utt, reference in references.items():
        print(f"\n  {utt}\n    {'reference':<{width}}  {reference}")
        for name in recognizers:
            print(f"    {name:<{width}}  {examples[name].get(utt, '')}")
    _demo_tts()
    return 0
