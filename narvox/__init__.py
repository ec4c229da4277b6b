"""narvox: speech synthesis and recognition with AR and NAR backends, Kaldi-style recipes and
ONNX Runtime deployment."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("narvox")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

from narvox.errors import AudioError, DataDirError, NarvoxError, TextError  # noqa: E402

__all__ = ["__version__", "ASR", "TTS", "AudioError", "DataDirError", "NarvoxError", "TextError"]


def __getattr__(name: str):
    # the API classes load lazily so `import narvox` stays light (no torch, no onnxruntime)
    if name == "ASR":
        from narvox.asr.api import ASR
        return ASR
    if name == "TTS":
        from narvox.tts.api import TTS
        return TTS
    raise AttributeError(f"module 'narvox' has no attribute '{name}'")
