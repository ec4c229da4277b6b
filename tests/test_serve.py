"""`narvox serve` over real HTTP: a uvicorn server started here, the shipped recognizers and the
shipped VALL-E, a tiny pseudo-AR bundle for streaming; OpenAI's own client; every bad input a 4xx
naming the problem while the server keeps serving; concurrent requests batched, with the
transcripts of serial ones."""
import io
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from narvox.serve.app import Models, ServeConfig, create_app

SCREENSHOT = Path(__file__).resolve().parents[1] / "bench" / "results" / "serve_page.png"  # what the test saw
CONFIG = dict(asr={"ctc": "ctc", "paraformer": "paraformer"}, max_wait=0.05, num_threads=1,
              max_upload_bytes=2_000_000, max_audio_seconds=60)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn
    from narvox.export.tts import export_tts
    from tests.test_tts_export import tiny_model_dir
    tmp = tmp_path_factory.mktemp("serve")
    model_dir, _ = tiny_model_dir(tmp, "aligned", kind="par")
    par = export_tts(model_dir, tmp / "par")
    rng = np.random.default_rng(0)
    np.savez(par / "voices.npz", names=np.array(["tiny"]), codes_0=rng.integers(0, 1024, (3, 100)).astype(np.int16),
             phones_0=np.zeros(0, dtype=np.int64))
    config = ServeConfig(**CONFIG, tts={"ar": "ar", "par": str(par)})
    models = Models(config)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(create_app(config, models), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    while not uv.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", models
    uv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def speech_files(tiny_corpus):
    from narvox.data import read_data_dir
    data = read_data_dir(tiny_corpus / "test_seen")
    return [open(data.wav_scp[u], "rb").read() for u in data.utt_ids[:4]]


def transcribe(url, data: bytes, model="ctc", fmt="json", **extra):
    return httpx.post(f"{url}/v1/audio/transcriptions", files={"file": ("speech.flac", data, "audio/flac")},
                      data={"model": model, "response_format": fmt, **extra}, timeout=60)


def test_transcription_formats(server, speech_files):
    url, _ = server
    text = transcribe(url, speech_files[0]).json()["text"]
    assert text and transcribe(url, speech_files[0], fmt="text").text == text + "\n"
    srt = transcribe(url, speech_files[0], fmt="srt").text
    assert srt.startswith("1\n00:00:") and " --> " in srt
    verbose = transcribe(url, speech_files[0], fmt="verbose_json", **{"timestamp_granularities[]": "word"}).json()
    assert verbose["text"] == text and verbose["segments"] and verbose["duration"] > 0
    assert " ".join(w["word"] for w in verbose["words"]) == text
    assert all(w["start"] <= w["end"] <= verbose["duration"] for w in verbose["words"])


def test_concurrent_requests_are_batched_and_match_serial_ones(server, speech_files):
    url, models = server
    for name in ("ctc", "paraformer"):
        serial = [transcribe(url, f, name).json()["text"] for f in speech_files]
        before = len(models.batchers[name].batch_sizes)
        with ThreadPoolExecutor(12) as pool:
            together = list(pool.map(lambda f: transcribe(url, f, name).json()["text"], speech_files * 3))
        assert together == serial * 3
        assert max(models.batchers[name].batch_sizes[before:]) > 1  # requests shared batches


def test_bad_requests_are_named_and_the_server_goes_on(server, speech_files):
    url, _ = server
    cases = [
        (transcribe(url, b"not audio at all"), 400, "cannot decode audio"),
        (transcribe(url, b""), 400, "is empty"),
        (transcribe(url, speech_files[0], model="whisper-1"), 404, "unknown model 'whisper-1'"),
        (transcribe(url, speech_files[0], fmt="vtt"), 400, "response_format 'vtt'"),
        (transcribe(url, b"\0" * 2_100_000), 413, "limit is 2000000"),
        (httpx.post(f"{url}/v1/audio/transcriptions", json={"model": "ctc"}), 415, "multipart/form-data"),
        (httpx.post(f"{url}/v1/audio/transcriptions", data={"model": "ctc"}, files={"other": ("x", b"1")}), 400,
         "no 'file' field"),
        (httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "Hi.", "voice": "alloy"}), 400,
         "unknown voice 'alloy'"),
        (httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "  "}), 400, "'input' must be non-empty"),
        (httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "a" * 5000}), 400, "limit is 4096"),
        (httpx.post(f"{url}/v1/audio/speech", json={"model": "tts-1", "input": "Hi."}), 404, "unknown model 'tts-1'"),
        (httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "Hi.", "response_format": "aac"}), 400,
         "response_format 'aac'"),
        (httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "Hi.", "speed": 9}), 400, "'speed'"),
        (httpx.post(f"{url}/v1/audio/speech", content=b"{", headers={"content-type": "application/json"}), 400,
         "not JSON"),
        (httpx.post(f"{url}/v1/audio/speech", content=b"input=hi"), 415, "application/json"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert message in error["message"] and error["type"] == "invalid_request_error"
    long = io.BytesIO()
    sf.write(long, np.zeros(16000 * 61, dtype=np.float32), 16000, format="FLAC")
    response = transcribe(url, long.getvalue())
    assert response.status_code == 413 and "61.0 s of audio" in response.json()["error"]["message"]
    assert transcribe(url, speech_files[0]).json()["text"]  # still serving


def test_speech_formats_and_streaming(server):
    url, _ = server
    for fmt, container in (("wav", "WAV"), ("flac", "FLAC"), ("mp3", "MP3")):
        r = httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "Hello there.", "response_format": fmt},
                       timeout=60)
        assert r.status_code == 200 and sf.info(io.BytesIO(r.content)).format == container
    r = httpx.post(f"{url}/v1/audio/speech", json={"model": "ar", "input": "Hello there.", "response_format": "pcm"},
                   timeout=60)
    assert len(r.content) % 2 == 0 and r.headers["x-sample-rate"] == "16000"
    # the pseudo-AR backend streams: chunks arrive as its spans are made
    with httpx.stream("POST", f"{url}/v1/audio/speech", timeout=60,
                      json={"model": "par", "input": "Hello there, this is a longer sentence.", "response_format": "pcm"}) as r:
        chunks = [c for c in r.iter_raw() if c]
    assert r.status_code == 200 and len(chunks) > 1 and sum(map(len, chunks)) % 2 == 0


def test_websocket_streaming(server):
    from websockets.sync.client import connect
    url = server[0].replace("http://", "ws://") + "/v1/audio/speech/stream"
    with connect(url) as ws:
        ws.send(json.dumps({"model": "par", "input": "Hello there, this is a longer sentence."}))
        assert json.loads(ws.recv()) == {"sample_rate": 16000, "format": "pcm_s16le"}
        chunks = []
        while isinstance(message := ws.recv(), bytes):
            chunks.append(message)
        assert json.loads(message) == {"done": True} and len(chunks) > 1
    with connect(url) as ws:
        ws.send(json.dumps({"model": "par", "input": "Hi.", "voice": "nobody"}))
        assert "unknown voice 'nobody'" in json.loads(ws.recv())["error"]["message"]


def test_openai_client(server, speech_files, tmp_path):
    from openai import OpenAI
    url, _ = server
    client = OpenAI(base_url=f"{url}/v1", api_key="unused")
    path = tmp_path / "speech.flac"
    path.write_bytes(speech_files[1])
    with open(path, "rb") as f:
        result = client.audio.transcriptions.create(model="paraformer", file=f)
    assert result.text == transcribe(url, speech_files[1], "paraformer").json()["text"]
    with open(path, "rb") as f:
        verbose = client.audio.transcriptions.create(model="ctc", file=f, response_format="verbose_json",
                                                     timestamp_granularities=["word"])
    assert verbose.words and verbose.words[0].start >= 0
    audio = client.audio.speech.create(model="ar", voice="flite-slt", input="Hello world.", response_format="wav")
    samples, rate = sf.read(io.BytesIO(audio.content))
    assert rate == 16000 and len(samples) > 1600
    assert {m.id for m in client.models.list()} == {"ctc", "paraformer", "ar", "par"}


def test_health_and_page(server):
    url, _ = server
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and "/v1/audio/transcriptions" in page.text


def test_the_serving_process_never_imports_torch():
    code = """
import json, sys
import numpy as np
from narvox.serve.app import Models, ServeConfig, create_app
models = Models(ServeConfig(asr={"ctc": "ctc"}, tts={"ar": "ar"}))
create_app(models=models)
speech = models.tts["ar"].synthesize("Hi there.")
models.asr["ctc"].transcribe((speech.audio, speech.sample_rate))
print(json.dumps(sorted(k for k in sys.modules if k.split(".")[0] in ("torch", "torchaudio", "pytorch_lightning"))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


@pytest.mark.skipif(not shutil.which("chromedriver"), reason="no headless browser (make test installs chromium)")
def test_web_page_in_a_real_browser(server, speech_files, tmp_path):
    """Debian's Chromium, headless: upload a file and read its transcript with timestamps, then
    synthesize with every backend and get a playable audio element per backend."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    url, _ = server
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,1300"):
        options.add_argument(flag)
    options.binary_location = shutil.which("chromium")
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        browser.get(url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#asr-model option")) == 2)
        upload = tmp_path / "speech.flac"
        upload.write_bytes(speech_files[0])
        browser.find_element(By.ID, "audio-file").send_keys(str(upload))
        browser.find_element(By.ID, "transcribe").click()
        wait.until(lambda b: b.find_element(By.ID, "transcript").text not in ("", "…"))
        model = browser.find_element(By.ID, "asr-model").get_attribute("value")
        expected = transcribe(url, speech_files[0], model).json()["text"]
        assert browser.find_element(By.ID, "transcript").text == expected
        assert len(browser.find_elements(By.CSS_SELECTOR, "#segments tr")) >= 2  # header + a timed segment
        browser.find_element(By.ID, "speak").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#backends audio")) == 2)
        durations = wait.until(lambda b: b.execute_script(
            "const a = [...document.querySelectorAll('#backends audio')];"
            "return a.every(x => x.readyState >= 1) ? a.map(x => x.duration) : null;"))
        assert all(d > 0.1 for d in durations)  # both backends' audio decodes in the browser
        assert "made in" in browser.find_element(By.ID, "backends").text
        browser.save_screenshot(str(SCREENSHOT))
        assert SCREENSHOT.stat().st_size > 0
    finally:
        browser.quit()
