"""Run exported narvox bundles with ONNX Runtime. Nothing here imports torch.

`onnxruntime` (CPU) or `onnxruntime-gpu` (CUDA, falling back to CPU) provide the module.

    runtime = load_bundle("paraformer")      # a bundle directory or a shipped name, any kind
"""
from __future__ import annotations

from pathlib import Path

from narvox import registry
from narvox.bundle import read_bundle
from narvox.runtime.asr import OnnxASR
from narvox.runtime.codec import OnnxCodec
from narvox.runtime.session import create_session


def load_bundle(name_or_dir: str | Path, **options):
    """The runtime of a bundle of any kind (OnnxASR, OnnxCodec), given its directory or a shipped
    name; `options` go to that class (providers, num_threads, n_codebooks...)."""
    bundle = read_bundle(name_or_dir)
    return registry.load(registry.RUNTIMES[bundle.family])(bundle, **options)


__all__ = ["OnnxASR", "OnnxCodec", "create_session", "load_bundle"]
