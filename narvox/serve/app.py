"""`narvox serve`: narvox's recognizers and synthesizers behind OpenAI's speech API, on
narvox.runtime alone (no torch in the serving process), with a web page at `/`.

    POST /v1/audio/transcriptions   multipart: file, model, response_format (json | text | srt |
                                    verbose_json), timestamp_granularities[] (segment, word)
    POST /v1/audio/speech           JSON: input, model, voice, response_format (wav | flac | mp3 |
                                    pcm), speed; the pseudo-AR backend's wav and pcm stream as made
    WS   /v1/audio/speech/stream    JSON in, 16-bit PCM chunks out, then {"done": true}
    GET  /v1/models, /health, /

Models load once at start. Transcriptions arriving together share one batch (narvox.serve.
batching); every model call runs on one worker thread, so requests never fight over the cores.
Bad requests get a 4xx and OpenAI's error body, {"error": {"message", "type", "param", "code"}},
naming the problem; uploads are read in memory (or Starlette's spooled temp file, deleted after
the request) and nothing a request says is ever opened as a path or run.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from narvox.asr.api import ASR, Transcript
from narvox.asr.subtitles import LAST_WORD_SECONDS, srt_cues, to_srt, word_starts
from narvox.errors import NarvoxError
from narvox.serve.batching import Batcher, QueueFull
from narvox.text.tokens import tokens_to_text
from narvox.tts.api import TTS

log = logging.getLogger(__name__)
PAGE = Path(__file__).with_name("page.html")
TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json")
SPEECH_FORMATS = {"wav": ("WAV", "PCM_16", "audio/wav"), "flac": ("FLAC", "PCM_16", "audio/flac"),
                  "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"), "pcm": (None, None, "audio/pcm")}


@dataclass
class ServeConfig:
    asr: dict[str, str] = field(default_factory=lambda: {"paraformer": "paraformer", "ctc": "ctc"})  # name -> bundle
    tts: dict[str, str] = field(default_factory=lambda: {"ar": "ar"})
    max_batch: int = 16          # transcriptions per batch
    max_wait: float = 0.0        # seconds a batch waits for more requests after its first (0: those already waiting)
    max_queue: int = 64          # waiting requests per model before 503
    max_upload_bytes: int = 25 * 2 ** 20   # OpenAI's limit
    max_audio_seconds: float = 600.0
    max_text_chars: int = 4096   # OpenAI's limit for speech input
    timeout: float = 120.0       # seconds a request may wait and run
    num_threads: int = 2


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return JSONResponse({"error": {"message": self.message, "type": kind, "param": self.param,
                                       "code": self.code}}, status_code=self.status)


class Models:
    """Everything loaded once: recognizers with their batchers, synthesizers, the worker thread."""

    def __init__(self, config: ServeConfig):
        self.config = config
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="narvox-model")
        self.asr = {name: ASR.from_pretrained(b, num_threads=config.num_threads) for name, b in config.asr.items()}
        self.tts = {name: TTS.from_pretrained(b, num_threads=config.num_threads) for name, b in config.tts.items()}
        self.batchers: dict[str, Batcher] = {}

    def start(self) -> None:
        for name, asr in self.asr.items():
            self.batchers[name] = Batcher(lambda items, asr=asr: asr.transcribe(items, batch_size=len(items)),
                                          self.worker, self.config.max_batch, self.config.max_wait,
                                          self.config.max_queue)
            self.batchers[name].start()

    async def stop(self) -> None:
        await asyncio.gather(*(b.stop() for b in self.batchers.values()))
        self.worker.shutdown(wait=True)

    def pick(self, family: str, name: str | None) -> str:
        known = self.asr if family == "asr" else self.tts
        if not name:
            raise ApiError(400, f"give a model: one of {', '.join(known)}", "model", "missing_model")
        if name not in known:
            raise ApiError(404, f"unknown model '{name}' for {'transcription' if family == 'asr' else 'speech'} "
                                f"(models: {', '.join(known)})", "model", "model_not_found")
        return name


def _decode_upload(data: bytes, filename: str, max_seconds: float) -> tuple[np.ndarray, int]:
    if not data:
        raise ApiError(400, f"file '{filename}' is empty", "file", "empty_file")
    try:
        samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        reason = str(e).rpartition(": ")[2] or type(e).__name__  # libsndfile's reason, not the buffer's repr
        raise ApiError(400, f"file '{filename}': cannot decode audio ({reason}); send wav, flac, ogg or mp3",
                       "file", "invalid_audio") from None
    if len(samples) == 0:
        raise ApiError(400, f"file '{filename}' holds no samples", "file", "empty_file")
    if not np.all(np.isfinite(samples)):
        raise ApiError(400, f"file '{filename}' holds NaN or infinite samples", "file", "invalid_audio")
    if len(samples) / rate > max_seconds:
        raise ApiError(413, f"file '{filename}' is {len(samples) / rate:.1f} s of audio; the limit is "
                            f"{max_seconds:g} s", "file", "audio_too_long")
    return samples.mean(axis=1), int(rate)


def words(t: Transcript) -> list[dict]:
    """Each word with its start (its first token's) and end: the next word's start, but no more
    than LAST_WORD_SECONDS after its own (a pause is not part of the word)."""
    starts = [i for i, s in enumerate(word_starts(t.tokens)) if s]
    out = []
    for k, first in enumerate(starts):
        last = starts[k + 1] if k + 1 < len(starts) else len(t.tokens)
        begin = t.timestamps[first]
        end = min(t.timestamps[last] if last < len(t.tokens) else t.duration, begin + LAST_WORD_SECONDS, t.duration)
        out.append({"word": tokens_to_text(t.tokens[first:last]), "start": round(begin, 3), "end": round(end, 3)})
    return out


def transcript_response(t: Transcript, fmt: str, granularities: list[str]) -> Response:
    if fmt == "text":
        return PlainTextResponse(t.text + "\n")
    if fmt == "srt":
        return PlainTextResponse(to_srt(t), media_type="application/x-subrip")
    if fmt == "json":
        return JSONResponse({"text": t.text})
    body = {"task": "transcribe", "language": "english", "duration": t.duration, "text": t.text,
            "segments": [{"id": i, "start": s, "end": e, "text": text}
                         for i, (s, e, text) in enumerate(srt_cues(t))]}
    if "word" in granularities:
        body["words"] = words(t)
    return JSONResponse(body)


def create_app(config: ServeConfig | None = None, models: Models | None = None) -> Starlette:
    config = config or ServeConfig()
    state: dict = {}

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["models"] = m = models or Models(config)
        m.start()
        log.info("serving ASR %s and TTS %s", list(m.asr), list(m.tts))
        yield
        await m.stop()  # uvicorn has finished the accepted requests; drain what they queued

    def guarded(handler):
        """The endpoint of `handler`: its refusals as OpenAI's error responses."""
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as e:
                return e.response()
            except QueueFull as e:
                return ApiError(503, f"the server is busy: {e}; retry later", code="overloaded").response()
            except asyncio.TimeoutError:
                return ApiError(504, f"the request took longer than {config.timeout:g} s", code="timeout").response()
            except NarvoxError as e:  # what the model refused: bad text, voice or options
                return ApiError(400, str(e), code="invalid_request").response()
        return endpoint

    async def transcriptions(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise ApiError(415, "send multipart/form-data with the audio in a 'file' field", "file",
                           "unsupported_content_type")
        size = int(request.headers.get("content-length") or 0)
        if size > config.max_upload_bytes:
            raise ApiError(413, f"the upload is {size} bytes; the limit is {config.max_upload_bytes}", "file",
                           "upload_too_large")
        async with request.form(max_files=1, max_fields=16) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ApiError(400, "no 'file' field with the audio", "file", "missing_file")
            data = await upload.read(config.max_upload_bytes + 1)
            if len(data) > config.max_upload_bytes:
                raise ApiError(413, f"the upload is over {config.max_upload_bytes} bytes", "file", "upload_too_large")
            m = state["models"]
            name = m.pick("asr", form.get("model"))
            fmt = form.get("response_format") or "json"
            if fmt not in TRANSCRIPT_FORMATS:
                raise ApiError(400, f"response_format '{fmt}' is not one of {', '.join(TRANSCRIPT_FORMATS)}",
                               "response_format", "invalid_format")
            granularities = form.getlist("timestamp_granularities[]") or ["segment"]
            filename = upload.filename or "file"
        samples, rate = _decode_upload(data, filename, config.max_audio_seconds)
        transcript = await asyncio.wait_for(m.batchers[name].submit((samples, rate)), config.timeout)
        if transcript.error:
            raise ApiError(400, f"file '{filename}': {transcript.error}", "file", "invalid_audio")
        return transcript_response(transcript, fmt, granularities)

    async def speech_request(body) -> tuple[TTS, dict, str]:
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be a JSON object", code="invalid_json")
        m = state["models"]
        tts = m.tts[m.pick("tts", body.get("model"))]
        text = body.get("input")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "'input' must be non-empty text", "input", "empty_input")
        if len(text) > config.max_text_chars:
            raise ApiError(400, f"'input' is {len(text)} characters; the limit is {config.max_text_chars}",
                           "input", "input_too_long")
        voice = body.get("voice") or tts.voices[0]
        if voice not in tts.voices:
            raise ApiError(400, f"unknown voice '{voice}' (voices: {', '.join(tts.voices)})", "voice", "unknown_voice")
        speed = body.get("speed", 1.0)
        if not isinstance(speed, (int, float)) or not 0.25 <= speed <= 4.0:
            raise ApiError(400, f"'speed' must be a number from 0.25 to 4, got {speed!r}", "speed", "invalid_speed")
        fmt = body.get("response_format") or "wav"
        if fmt not in SPEECH_FORMATS:
            raise ApiError(400, f"response_format '{fmt}' is not one of {', '.join(SPEECH_FORMATS)}",
                           "response_format", "invalid_format")
        return tts, {"text": text, "voice": voice, "speed": float(speed)}, fmt

    async def speech(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise ApiError(415, "send the request as application/json", code="unsupported_content_type")
        try:
            body = await request.json()
        except ValueError as e:
            raise ApiError(400, f"the body is not JSON ({e})", code="invalid_json") from None
        tts, args, fmt = await speech_request(body)
        worker = state["models"].worker
        loop = asyncio.get_running_loop()
        _, subtype, media = SPEECH_FORMATS[fmt]
        headers = {"X-Sample-Rate": str(tts.sample_rate)}
        if tts.backend.streams and fmt in ("wav", "pcm"):  # pseudo-AR: audio as the spans are made
            chunks = await loop.run_in_executor(worker, lambda: tts.synthesize_stream(**args))
            return StreamingResponse(_stream(chunks, worker, fmt, tts.sample_rate), media_type=media, headers=headers)
        started = time.perf_counter()
        result = await asyncio.wait_for(loop.run_in_executor(worker, lambda: tts.synthesize(**args)), config.timeout)
        headers["X-Synthesis-Seconds"] = f"{time.perf_counter() - started:.3f}"
        return Response(encode(result.audio, tts.sample_rate, fmt), media_type=media, headers=headers)

    async def speech_stream(ws: WebSocket) -> None:
        await ws.accept()
        try:
            tts, args, _ = await speech_request(await ws.receive_json())
            worker = state["models"].worker
            loop = asyncio.get_running_loop()
            chunks = await loop.run_in_executor(worker, lambda: tts.synthesize_stream(**args))
            await ws.send_json({"sample_rate": tts.sample_rate, "format": "pcm_s16le"})
            async for piece in _stream(chunks, worker, "pcm", tts.sample_rate):
                await ws.send_bytes(piece)
            await ws.send_json({"done": True})
        except ApiError as e:
            await ws.send_json(json.loads(e.response().body))
        except (NarvoxError, ValueError) as e:
            await ws.send_json({"error": {"message": str(e), "type": "invalid_request_error"}})
        except WebSocketDisconnect:
            return
        await ws.close()

    async def list_models(request: Request) -> Response:
        m = state["models"]
        data = [{"id": n, "object": "model", "owned_by": "narvox", "task": "transcription"} for n in m.asr]
        data += [{"id": n, "object": "model", "owned_by": "narvox", "task": "speech", "voices": t.voices,
                  "streams": t.backend.streams} for n, t in m.tts.items()]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        m = state["models"]
        return JSONResponse({"status": "ok", "queued": {n: b.queue.qsize() for n, b in m.batchers.items()}})

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    routes = [Route("/v1/audio/transcriptions", guarded(transcriptions), methods=["POST"]),
              Route("/v1/audio/speech", guarded(speech), methods=["POST"]),
              WebSocketRoute("/v1/audio/speech/stream", speech_stream),
              Route("/v1/models", list_models), Route("/health", health), Route("/", page)]
    return Starlette(routes=routes, lifespan=lifespan)


def encode(audio: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """float32 audio as the bytes of a wav, flac or mp3 file, or raw 16-bit little-endian PCM."""
    audio = np.clip(audio, -1.0, 1.0)
    container, subtype, _ = SPEECH_FORMATS[fmt]
    if container is None:
        return (audio * 32767).astype("<i2").tobytes()
    buf = io.BytesIO()
    sf.write(buf, audio, sample_rate, format=container, subtype=subtype)
    return buf.getvalue()


def wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say 'unknown' (0xFFFFFFFF), for audio streamed as made."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + unknown.to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
            + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + sample_rate.to_bytes(4, "little")
            + (2 * sample_rate).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
            + b"data" + unknown.to_bytes(4, "little"))


async def _stream(chunks, worker, fmt: str, sample_rate: int):
    """The audio chunks of a synthesize_stream iterator, each made on the worker thread."""
    loop = asyncio.get_running_loop()
    if fmt == "wav":
        yield wav_header(sample_rate)
    done = object()
    while True:
        chunk = await loop.run_in_executor(worker, next, chunks, done)
        if chunk is done:
            return
        yield encode(chunk, sample_rate, "pcm")
