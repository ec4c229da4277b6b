"""Run exported narvox bundles with ONNX Runtime. Nothing here imports torch.

`onnxruntime` (CPU) or `onnxruntime-gpu` (CUDA, falling back to CPU) provide the module.
"""
from narvox.runtime.asr import OnnxASR
from narvox.runtime.codec import OnnxCodec
from narvox.runtime.session import create_session

__all__ = ["OnnxASR", "OnnxCodec", "create_session"]
