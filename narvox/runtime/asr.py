"""ONNX Runtime recognizer for narvox ASR bundles (ctc, paraformer, attention)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from narvox.asr import search
from narvox.asr.frontend import AsrFrontend
from narvox.errors import NarvoxError
from narvox.features import Cmvn, FbankConfig
from narvox.runtime.session import create_session
from narvox.text.tokens import TokenTable, tokens_to_text

METHODS = {"ctc": ("greedy", "beam"), "paraformer": ("greedy",), "attention": ("greedy", "beam")}


def pad_batch(feats: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(f) for f in feats], dtype=np.int64)
    out = np.zeros((len(feats), lengths.max(), feats[0].shape[1]), dtype=np.float32)
    for i, f in enumerate(feats):
        out[i, :len(f)] = f
    return out, lengths


class OnnxASR:
    """`recognize(list of [T, D] features)` -> list of (token ids, start seconds)."""

    def __init__(self, bundle: str | Path, providers: list[str] | None = None, num_threads: int = 2):
        self.bundle = Path(bundle)
        meta_path = self.bundle / "narvox.json"
        if not meta_path.is_file():
            raise NarvoxError(f"{self.bundle}: not a narvox bundle (no narvox.json)")
        self.meta = json.loads(meta_path.read_text())
        self.kind = self.meta["kind"]
        self.tokens = TokenTable.load(self.bundle / "tokens.txt")
        cmvn = Cmvn.load(self.bundle / "am.mvn") if self.kind == "paraformer" else None
        self.frontend = AsrFrontend(self.meta["lfr_m"], self.meta["lfr_n"], cmvn,
                                    FbankConfig(**self.meta["fbank"]))
        self.frame_shift = self.meta["frame_shift"]
        session = lambda name: create_session(self.bundle / name, providers, num_threads)
        if self.kind == "ctc":
            self.model = session("model.onnx")
        elif self.kind == "paraformer":
            self.model = session("model.onnx")
        elif self.kind == "attention":
            self.encoder, self.decoder = session("encoder.onnx"), session("decoder_step.onnx")
        else:
            raise NarvoxError(f"{meta_path}: unknown model kind '{self.kind}'")

    def text(self, ids: list[int]) -> str:
        return tokens_to_text(self.tokens.symbols[i] for i in ids)

    def _times(self, frames) -> list[float]:
        return [round(int(f) * self.frame_shift, 3) for f in frames]

    def recognize(self, feats: list[np.ndarray], method: str = "greedy", beam: int = 5):
        if method not in METHODS[self.kind]:
            raise NarvoxError(f"{self.kind} bundles decode with {METHODS[self.kind]}, not '{method}'")
        x, lengths = pad_batch(feats)
        if self.kind == "ctc":
            log_probs, out_lens = self.model.run(None, {"x": x, "x_lens": lengths})
            if method == "greedy":
                return [(ids, self._times(f)) for ids, f in search.ctc_greedy(log_probs, out_lens)]
            hyps = [search.ctc_prefix_beam_search(log_probs[b, :out_lens[b]], beam) for b in range(len(x))]
            return [(h, self._times(search.ctc_align_starts(log_probs[b, :out_lens[b]], h)))
                    for b, h in enumerate(hyps)]
        if self.kind == "paraformer":
            return self._paraformer(x, lengths)
        return self._attention(x, lengths, 1 if method == "greedy" else beam)

    def _paraformer(self, x: np.ndarray, lengths: np.ndarray):
        log_probs, token_num, _, peaks = self.model.run(None, {"speech": x, "speech_lengths": lengths.astype(np.int32)})
        best = log_probs.argmax(-1)
        out = []
        for b in range(len(x)):
            # the graph ends each sequence with </s> at token_num - 1 and never predicts blank or
            # <s>; token j fires at the j-th peak (peaks sit on every third, 20 ms, sub-frame)
            n = int(token_num[b]) - 1
            fire = np.nonzero(peaks[b] > 1.0 - 1e-4)[0] // 3
            starts = [0] + [int(f) + 1 for f in fire[:max(n - 1, 0)]]
            starts += starts[-1:] * (n - len(starts))  # two tokens fired on one frame
            out.append((best[b, :n].tolist(), self._times(starts[:n])))
        return out

    def _attention(self, x: np.ndarray, lengths: np.ndarray, beam: int):
        log_probs, out_lens, cross_k, cross_v = self.encoder.run(None, {"x": x, "x_lens": lengths})
        n, b, h, t, dh = cross_k.shape
        repeat = lambda a, axis: np.repeat(a, beam, axis=axis)
        mask = repeat(np.arange(t)[None, :] < out_lens[:, None], 0)
        empty = np.zeros((n, b * beam, h, 0, dh), dtype=np.float32)

        static = {"cross_k": repeat(cross_k, 1), "cross_v": repeat(cross_v, 1), "memory_mask": mask}

        def step(tokens, position, cache):
            logp, k, v = self.decoder.run(None, {
                "tokens": tokens, "offset": np.array(position, dtype=np.int64), "self_k": cache[0],
                "self_v": cache[1], **static})
            return logp, (k, v)

        hyps = search.attention_beam_search(step, (empty, empty), b, beam, max(1, int(out_lens.max() * 0.6)),
                                            self.meta["sos_id"], self.meta["eos_id"])
        return [(ids, self._times(search.ctc_align_starts(log_probs[i, :out_lens[i]], ids)))
                for i, ids in enumerate(hyps)]
