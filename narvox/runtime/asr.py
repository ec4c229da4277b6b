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

# the fewest feature frames that give one encoder frame (4x convolutional subsampling or LFR)
MIN_FRAMES = {"ctc": 7, "attention": 7, "paraformer": 1}
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
        return tokens_to_text((self.tokens.symbols[i] for i in ids), self.meta.get("symbol_form"))

    def _times(self, frames) -> list[float]:
        return [round(int(f) * self.frame_shift, 3) for f in frames]

    def recognize(self, feats: list[np.ndarray], method: str = "greedy", beam: int = 5):
        """Features [T, D] of each utterance -> (token ids, start seconds) each. An utterance too
        short for the model's input layer has no tokens; the rest of the batch still decodes."""
        if method not in METHODS[self.kind]:
            raise NarvoxError(f"{self.kind} bundles decode with {METHODS[self.kind]}, not '{method}'")
        for i, f in enumerate(feats):
            if np.ndim(f) != 2 or np.shape(f)[1] != self.frontend.dim:
                raise NarvoxError(f"{self.bundle}: features {i} have shape {np.shape(f)}, "
                                  f"expected [frames, {self.frontend.dim}]")
        heard = [i for i, f in enumerate(feats) if len(f) >= MIN_FRAMES[self.kind]]
        out: list[tuple[list[int], list[float]]] = [([], []) for _ in feats]
        if heard:
            for i, hyp in zip(heard, self._recognize([feats[i] for i in heard], method, beam)):
                out[i] = hyp
        return out

    def _recognize(self, feats: list[np.ndarray], method: str, beam: int):
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
        log_probs, token_num, us_alphas, us_peaks = self.model.run(
            None, {"speech": x, "speech_lengths": lengths.astype(np.int32)})
        best = log_probs.argmax(-1)
        # the graph ends each sequence with </s> at token_num - 1 and never predicts blank or
        # <s>; its alphas and peaks are at 3x the LFR frame rate (20 ms sub-frames)
        alphas = us_alphas.reshape(len(x), -1, 3).sum(-1)
        fired = us_peaks.reshape(len(x), -1, 3).max(-1)
        out = []
        for b in range(len(x)):
            n = int(token_num[b]) - 1
            out.append((best[b, :n].tolist(), self._times(search.cif_token_starts(alphas[b], fired[b], n))))
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

        max_lens = np.maximum(1, (out_lens * search.MAX_TOKENS_PER_FRAME).astype(np.int64))
        hyps = search.attention_beam_search(step, (empty, empty), b, beam, max_lens,
                                            self.meta["sos_id"], self.meta["eos_id"])
        return [(ids, self._times(search.ctc_align_starts(log_probs[i, :out_lens[i]], ids)))
                for i, ids in enumerate(hyps)]
