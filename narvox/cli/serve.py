"""`narvox serve`: the OpenAI-compatible speech server and its web page (narvox.serve)."""
from __future__ import annotations

from narvox.bundle import shipped
from narvox.cli.args import UsageError, positive_float, positive_int


def _named(values: list[str], what: str) -> dict[str, str]:
    """'name=bundle' or a shipped name/bundle dir (named by itself) -> {name: bundle}."""
    out = {}
    for v in values:
        name, _, bundle = v.partition("=") if "=" in v else (v, "", v)
        if not name or not bundle or name in out:
            raise UsageError(f"--{what}: '{v}' is not NAME=BUNDLE or a shipped name, or the name is given twice")
        out[name] = bundle
    return out


def add_parsers(sub) -> None:
    p = sub.add_parser("serve", help="serve the models over OpenAI's speech API, with a web page at /")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=positive_int, default=8000)
    p.add_argument("--asr", nargs="*", default=list(shipped("asr")),
                   help="recognizers: shipped names or NAME=BUNDLE_DIR (default: every shipped one)")
    p.add_argument("--tts", nargs="*", default=list(shipped("tts")),
                   help="synthesizers: shipped names or NAME=BUNDLE_DIR (default: every shipped one)")
    p.add_argument("--max-batch", type=positive_int, default=16, help="transcriptions batched together")
    p.add_argument("--max-wait-ms", type=float, default=0.0,
                   help="how long a batch waits for more requests (0: it takes those waiting already)")
    p.add_argument("--max-queue", type=positive_int, default=64, help="waiting requests per model before 503")
    p.add_argument("--max-upload-mb", type=positive_float, default=25.0)
    p.add_argument("--max-audio-seconds", type=positive_float, default=600.0)
    p.add_argument("--timeout", type=positive_float, default=120.0, help="seconds a request may take")
    p.add_argument("--num-threads", type=positive_int, default=2)
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    import uvicorn
    from narvox.serve.app import ServeConfig, create_app
    config = ServeConfig(asr=_named(args.asr, "asr"), tts=_named(args.tts, "tts"), max_batch=args.max_batch,
                         max_wait=args.max_wait_ms / 1000, max_queue=args.max_queue,
                         max_upload_bytes=int(args.max_upload_mb * 2 ** 20),
                         max_audio_seconds=args.max_audio_seconds, timeout=args.timeout,
                         num_threads=args.num_threads)
    if not config.asr and not config.tts:
        raise UsageError("nothing to serve: give --asr or --tts models")
    # uvicorn finishes the requests it accepted before it stops (SIGINT / SIGTERM)
    uvicorn.run(create_app(config), host=args.host, port=args.port, timeout_graceful_shutdown=30,
                log_level="info")
    return 0
