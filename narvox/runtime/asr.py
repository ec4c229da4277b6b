"""ONNX Runtime recognizer for narvox ASR bundles: OnnxASR, and one runner per bundle kind (the
registry names it) that runs the kind's graphs and search."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from narvox import registry
from narvox.asr import search
from narvox.asr.frontend import AsrFrontend
from narvox.bundle import Bundle, read_bundle
from narvox.errors import NarvoxError
from narvox.runtime.session import GraphSession
from narvox.text.tokens import TokenTable, tokens_to_text

Hypothesis = tuple[list[int], list[int]]  # token ids, encoder frame where each starts
OpenGraph = Callable[[str], GraphSession]  # role of an ONNX file in the bundle -> its session


def pad_batch(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    out = np.zeros((len(feats), lengths.max(), feats[0].shape[1]), dtype=np.float32)
    for i, f in enumerate(feats):
        out[i, :len(f)] = f
    return out, lengths


class OnnxASR:
    """`recognize(list of [T, D] features)` -> list of (token ids, start seconds), for a bundle of
    any ASR kind (a directory or a shipped name)."""

    def __init__(self, bundle: str | Path | Bundle, providers: list[str] | None = None, num_threads: int = 2):
        self.bundle = read_bundle(bundle, family="asr")
        self.kind = self.bundle.kind
        self.meta = self.bundle.settings
        self.tokens = TokenTable.load(self.bundle.file("tokens"))
        self.frontend = AsrFrontend.from_bundle(self.bundle)
        open_graph = lambda role: GraphSession(self.bundle, role, providers, num_threads)  # noqa: E731
        self.runner = registry.load(registry.bundle_kind(self.kind).runner)(self.bundle, open_graph)

    def text(self, ids: list[int]) -> str:
        return tokens_to_text((self.tokens.symbols[i] for i in ids), self.meta.get("symbol_form"))

    def _times(self, frames) -> list[float]:
        return [round(int(f) * self.meta["frame_shift"], 3) for f in frames]

    def method(self, name: str) -> str:
        """The decoding method `name` asks of this bundle (registry.decoding), or a NarvoxError."""
        return registry.decoding(name, [self.kind], f"the {self.kind} bundle {self.bundle.path}").method

    def recognize(self, feats: list[np.ndarray], method: str = "greedy", beam: int = 5):
        """Features [T, D] of each utterance -> (token ids, start seconds) each. An utterance too
        short for the model's input layer has no tokens; the rest of the batch still decodes."""
        method = self.method(method)
        for i, f in enumerate(feats):
            if np.ndim(f) != 2 or np.shape(f)[1] != self.frontend.dim:
                raise NarvoxError(f"{self.bundle.path}: features {i} have shape {np.shape(f)}, "
                                  f"expected [frames, {self.frontend.dim}]")
        heard = [i for i, f in enumerate(feats) if len(f) >= self.meta["min_frames"]]
        out: list[tuple[list[int], list[float]]] = [([], []) for _ in feats]
        if heard:
            x, lengths = pad_batch([feats[i] for i in heard])
            for i, (ids, frames) in zip(heard, self.runner.decode(x, lengths, method, beam)):
                out[i] = (ids, self._times(frames))
        return out


def _aligned(log_probs: np.ndarray, lengths: np.ndarray, hyps: list[list[int]]) -> list[Hypothesis]:
    """Hypotheses of another search, timed by force-aligning them with the CTC head."""
    return [(ids, search.ctc_align_starts(log_probs[b, :lengths[b]], ids)) for b, ids in enumerate(hyps)]


class CtcRunner:
    def __init__(self, bundle: Bundle, open_graph: OpenGraph):
        self.model = open_graph("model")

    def decode(self, x: np.ndarray, lengths: np.ndarray, method: str, beam: int) -> list[Hypothesis]:
        log_probs, out_lens = self.model(x, lengths)
        if method == "greedy":
            return search.ctc_greedy(log_probs, out_lens)
        hyps = [search.ctc_prefix_beam_search(log_probs[b, :out_lens[b]], beam) for b in range(len(x))]
        return _aligned(log_probs, out_lens, hyps)


class ParaformerRunner:
    def __init__(self, bundle: Bundle, open_graph: OpenGraph):
        self.model = open_graph("model")

    def decode(self, x: np.ndarray, lengths: np.ndarray, method: str, beam: int) -> list[Hypothesis]:
        log_probs, token_num, us_alphas, us_peaks = self.model(x, lengths.astype(np.int32))
        best = log_probs.argmax(-1)
        # the graph ends each sequence with </s> at token_num - 1 and never predicts blank or
        # <s>; its alphas and peaks are at 3x the LFR frame rate (20 ms sub-frames)
        alphas = us_alphas.reshape(len(x), -1, 3).sum(-1)
        fired = us_peaks.reshape(len(x), -1, 3).max(-1)
        out = []
        for b in range(len(x)):
            n = int(token_num[b]) - 1
            out.append((best[b, :n].tolist(), search.cif_token_starts(alphas[b], fired[b], n)))
        return out


class AttentionRunner:
    def __init__(self, bundle: Bundle, open_graph: OpenGraph):
        self.encoder, self.decoder = open_graph("encoder"), open_graph("decoder")
        self.sos_id, self.eos_id = bundle.settings["sos_id"], bundle.settings["eos_id"]

    def decode(self, x: np.ndarray, lengths: np.ndarray, method: str, beam: int) -> list[Hypothesis]:
        beam = 1 if method == "greedy" else beam
        log_probs, out_lens, *cross = self.encoder(x, lengths)  # each layer's keys, then values
        if method == "rescore":
            nbest = [search.ctc_prefix_beams(log_probs[b, :out_lens[b]], beam) for b in range(len(x))]
            step, cache = self._step(cross, out_lens, np.array([len(n) for n in nbest]))
            hyps = search.attention_rescore(step, cache, nbest, self.sos_id, self.eos_id)
        else:
            step, cache = self._step(cross, out_lens, beam)
            max_lens = np.maximum(1, (out_lens * search.MAX_TOKENS_PER_FRAME).astype(np.int64))
            hyps = search.attention_beam_search(step, cache, len(x), beam, max_lens, self.sos_id, self.eos_id)
        return _aligned(log_probs, out_lens, hyps)

    def _step(self, cross: list[np.ndarray], lengths: np.ndarray, repeats):
        """The decoder step (narvox.asr.search.StepFn) with each utterance as `repeats` rows, and
        its empty cache."""
        h, t, dh = cross[-1].shape[1:]
        mask = np.repeat(np.arange(t)[None, :] < lengths[:, None], repeats, axis=0)
        cross = [np.repeat(c, repeats, axis=0) for c in cross]
        empty = np.zeros((len(cross) // 2, len(mask), h, 0, dh), dtype=np.float32)

        def step(tokens, position, cache):
            logp, k, v = self.decoder(tokens, np.array(position, dtype=np.int64), *cache, *cross, mask)
            return logp, (k, v)

        return step, (empty, empty)
