"""ONNX Runtime sessions with the provider chosen once for every model."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from narvox.bundle import Bundle

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


class GraphSession:
    """One graph of a bundle, called with its inputs and returning its outputs in the order the
    bundle records, so no runtime spells an input or output name."""

    def __init__(self, bundle: Bundle, role: str, providers: list[str] | None = None, num_threads: int = 2):
        self.graph = bundle.graph(role)
        self.session = create_session(bundle.file(role), providers, num_threads)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(list(self.graph.outputs), dict(zip(self.graph.inputs, inputs, strict=True)))
