"""`narvox synthesize`: text to a WAV file, in a shipped voice or the voice of a prompt recording."""
from __future__ import annotations

from pathlib import Path

from narvox.bundle import shipped
from narvox.cli.args import UsageError, positive_float, positive_int
from narvox.errors import NarvoxError


def add_parsers(sub) -> None:
    p = sub.add_parser("synthesize", help="text to speech with a shipped or trained model")
    p.add_argument("text", nargs="?", help="what to say (several sentences are fine)")
    p.add_argument("-o", "--output", type=Path, help="the WAV file to write")
    p.add_argument("--backend", default="ar", help=f"shipped model: {' | '.join(shipped('tts')) or 'none yet'}")
    p.add_argument("--model", help="a bundle directory or a trained model directory (instead of --backend)")
    p.add_argument("--refiner", help="pseudo-AR only: a masked model (name or directory) that refines its codes "
                   "(PALLE's two models) instead of the pseudo-AR model itself")
    p.add_argument("--voice", help="a shipped voice (see --list-voices); default: the first")
    p.add_argument("--prompt", type=Path, help="a recording of 1-10 s whose voice to speak in")
    p.add_argument("--prompt-text", help="what the prompt says (default: transcribed by narvox's ASR)")
    p.add_argument("--duration", type=positive_float, help="seconds of speech to make")
    p.add_argument("--speed", type=positive_float, default=1.0, help="> 1 speaks faster (aligned models)")
    p.add_argument("--seed", type=int, help="the same seed gives the same speech")
    p.add_argument("--temperature", type=float, help="default: narvox.TTS's")
    p.add_argument("--top-k", type=int, help="default: narvox.TTS's")
    p.add_argument("--steps", type=positive_int, nargs="+",
                   help="masked and pseudo-AR backends: passes per codebook level, coarse to fine")
    p.add_argument("--span", type=positive_float,
                   help="pseudo-AR backend: the share of the speech fixed per step (default: the model's)")
    p.add_argument("--refine-steps", type=int, help="pseudo-AR backend: refinement passes (default: the bundle's)")
    p.add_argument("--stream", action="store_true",
                   help="write the audio as it is made (pseudo-AR: span by span; others: sentence by sentence)")
    p.add_argument("--list-voices", action="store_true", help="print the model's voices and exit")
    p.add_argument("--num-threads", type=positive_int, default=2)
    p.set_defaults(func=cmd_synthesize)


def cmd_synthesize(args) -> int:
    from narvox.audio import write_audio
    from narvox.tts.api import TTS
    if not args.list_voices and (args.text is None or args.output is None):
        raise UsageError("give the text and -o OUTPUT.wav (or --list-voices)")
    if args.voice and args.prompt:
        raise UsageError("--voice and --prompt exclude each other")
    try:
        tts = TTS.from_pretrained(args.model or args.backend, num_threads=args.num_threads, refiner=args.refiner)
    except NarvoxError as e:  # a model that cannot be loaded is a bad --model/--backend value
        raise UsageError(str(e)) from e
    if args.list_voices:
        print("\n".join(tts.voices))
        return 0
    options = dict(voice=args.voice, prompt=args.prompt, prompt_text=args.prompt_text, duration=args.duration,
                   speed=args.speed, seed=args.seed, steps=args.steps, span=args.span,
                   **{name: value for name, value in (("temperature", args.temperature), ("top_k", args.top_k))
                      if value is not None})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.stream:
        return _stream(tts, args.text, args.output, options)
    speech = tts.synthesize(args.text, refine_steps=args.refine_steps, **options)
    write_audio(args.output, speech.audio, speech.sample_rate)
    print(f"{args.output}: {speech.duration:.2f} s")
    return 0


def _stream(tts, text: str, output: Path, options: dict) -> int:
    """Writes the chunks of TTS.synthesize_stream to `output` as they come (a player reading the
    file can start early), and reports when the first one came."""
    import time
    import soundfile as sf
    start = time.perf_counter()
    chunks = tts.synthesize_stream(text, **options)
    first, samples = None, 0
    with sf.SoundFile(output, "w", samplerate=tts.sample_rate, channels=1, subtype="PCM_16") as f:
        for chunk in chunks:
            first = first if first is not None else time.perf_counter() - start
            f.write(chunk)
            f.flush()
            samples += len(chunk)
    print(f"{output}: {samples / tts.sample_rate:.2f} s, first audio after {first:.3f} s, "
          f"all after {time.perf_counter() - start:.3f} s")
    return 0
