"""Load figure of `narvox serve`: requests per second and p50/p95 latency at 1, 4 and 16
concurrent clients on loopback, with dynamic batching (up to 16 transcriptions a batch) and
without (one request at a time), for transcription of 5 s files and for synthesis.

  python bench/serve.py --data egs/synth_en/corpus/full/test_seen --asr ctc --tts ar

Each setting sends `--requests` requests (at least one per client) and stops early after
`--max-seconds`. The server is the `narvox serve` command in a process of its own, so the clients
(threads of this process) do not take its interpreter lock. Beside the load figure, the recognizer
alone transcribes the same 16 files as 16 batches of one and as one batch of 16: the most that
batching can give on this CPU, whatever the server does. Writes bench/results/serve.json and serve.md.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from narvox.data import read_data_dir

SENTENCES = ["The quick brown fox jumps over the lazy dog.", "Please call me back after lunch.",
             "It rained all day in the city.", "We will meet at the station at nine."]


def five_second_files(data_dir: Path, count: int) -> list[bytes]:
    """FLAC files of exactly 5 s: test utterances joined end to end and cut."""
    data = read_data_dir(data_dir)
    audio = np.concatenate([data.load_audio(u, 16000)[0] for u in data.utt_ids[:4 * count]])
    files = []
    for i in range(count):
        buf = io.BytesIO()
        sf.write(buf, audio[i * 80000:(i + 1) * 80000], 16000, format="FLAC")
        files.append(buf.getvalue())
    return files


class Server:
    """`narvox serve --asr ASR --tts TTS ...` on a free loopback port, stopped by SIGTERM."""

    def __init__(self, *options: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.command = [sys.executable, "-m", "narvox", "serve", "--port", str(self.port), *options]

    def __enter__(self) -> str:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.perf_counter() + 120
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"narvox serve exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.process.kill()
        raise RuntimeError("narvox serve did not answer /health within 120 s")

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(60)


def model_alone(asr_name: str, files: list[bytes], threads: int, repeats: int = 3) -> dict:
    """Seconds the recognizer takes for `files` as batches of one and as one batch (best of
    `repeats`): the ceiling of what dynamic batching can gain."""
    from narvox import ASR
    asr = ASR.from_pretrained(asr_name, num_threads=threads)
    audio = [sf.read(io.BytesIO(f), dtype="float32")[0] for f in files]
    asr.transcribe(audio[:2], batch_size=2)  # warm-up
    times = {}
    for name, size in (("batch_1_s", 1), (f"batch_{len(audio)}_s", len(audio))):
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            asr.transcribe(audio, batch_size=size)
            runs.append(time.perf_counter() - start)
        times[name] = min(runs)
    return {"files": len(audio), **times}


def load(send, clients: int, requests: int, max_seconds: float) -> dict:
    """`clients` threads sending requests back to back; latency of each, throughput of all."""
    latencies, lock, stop_at = [], threading.Lock(), time.perf_counter() + max_seconds
    counter = iter(range(max(requests, clients)))

    def client():
        with httpx.Client(timeout=600) as http:
            while time.perf_counter() < stop_at:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                send(http, i)
                with lock:
                    latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda _: client(), range(clients)))
    took = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "seconds": took, "rps": len(latencies) / took,
            "p50_s": float(np.percentile(latencies, 50)), "p95_s": float(np.percentile(latencies, 95))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=Path("egs/synth_en/corpus/full/test_seen"))
    p.add_argument("--asr", default="ctc")
    p.add_argument("--tts", default="ar")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--requests", type=int, default=64, help="transcription requests per setting")
    p.add_argument("--speech-requests", type=int, default=16, help="synthesis requests per setting")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-wait-ms", type=float, default=0.0, help="narvox serve's --max-wait-ms")
    p.add_argument("--out", type=Path, default=Path("bench/results"))
    args = p.parse_args()
    files = five_second_files(args.data, 16)
    rows = []
    for batching, max_batch in (("dynamic batching", 16), ("one at a time", 1)):
        options = ["--asr", args.asr, "--tts", args.tts, "--max-batch", str(max_batch),
                   "--max-wait-ms", str(args.max_wait_ms),
                   "--max-queue", "256", "--num-threads", str(args.threads)]
        with Server(*options) as url:
            def transcribe(http, i):
                r = http.post(f"{url}/v1/audio/transcriptions", data={"model": args.asr},
                              files={"file": ("five.flac", files[i % len(files)], "audio/flac")})
                r.raise_for_status()

            def speak(http, i):
                r = http.post(f"{url}/v1/audio/speech", json={"model": args.tts, "input": SENTENCES[i % len(SENTENCES)]})
                r.raise_for_status()
            with httpx.Client(timeout=600) as http:
                transcribe(http, 0)  # warm-up
            for clients in args.clients:
                for task, send, n in (("transcription (5 s)", transcribe, args.requests),
                                      ("synthesis", speak, args.speech_requests)):
                    row = {"task": task, "serving": batching, **load(send, clients, n, args.max_seconds)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    alone = model_alone(args.asr, files, args.threads)
    print(json.dumps(alone), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"asr": args.asr, "tts": args.tts, "threads": args.threads, "max_wait_ms": args.max_wait_ms, "rows": rows,
              "model_alone": alone}
    (args.out / "serve.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "serve.md").write_text(markdown(result))
    print(markdown(result))


def markdown(result: dict) -> str:
    rows = result["rows"]
    lines = [f"`narvox serve` (its own process) on loopback, {result['threads']} threads, ASR `{result['asr']}`, "
             f"TTS `{result['tts']}`, batches waiting {result['max_wait_ms']:g} ms for more requests.",
             "", "| task | serving | clients | requests | requests/s | p50 s | p95 s |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['task']} | {r['serving']} | {r['clients']} | {r['requests']} | {r['rps']:.2f} | "
                     f"{r['p50_s']:.2f} | {r['p95_s']:.2f} |")
    gains = []
    for r in rows:
        if r["serving"] == "dynamic batching":
            alone = next(x for x in rows if x["serving"] == "one at a time" and x["task"] == r["task"]
                         and x["clients"] == r["clients"])
            gains.append(f"| {r['task']} | {r['clients']} | {r['rps'] / alone['rps']:.2f}x |")
    alone = result["model_alone"]
    n = alone["files"]
    ceiling = [f"The recognizer alone on the same {n} files (no HTTP, no decoding of the upload): "
               f"{alone['batch_1_s']:.3f} s as {n} batches of one, {alone[f'batch_{n}_s']:.3f} s as one batch of {n}: "
               f"batching gains at most {alone['batch_1_s'] / alone[f'batch_{n}_s']:.2f}x here."]
    return "\n".join(lines + ["", "Throughput of dynamic batching over one at a time:", "",
                              "| task | clients | gain |", "|---|---|---|", *gains, "", *ceiling]) + "\n"


if __name__ == "__main__":
    main()
