"""ONNX Runtime sessions with the provider chosen once for every model."""
from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


def default_providers() -> list[str]:
    import onnxruntime as ort
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def create_session(path: str | Path, providers: list[str] | None = None, num_threads: int = 2):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=opts, providers=providers or default_providers())
    log.debug("%s runs on %s", Path(path).name, session.get_providers()[0])
    return session
