"""Export narvox ASR models as bundles that need no torch.

- CTC (`ctc/`): WeNet-style graph that sherpa-onnx's `from_wenet_ctc` loads: inputs `x` fbank
  (N, T, 80) and `x_lens` int64, CMVN inside; outputs `log_probs`, `log_probs_lens`.
- Paraformer (`paraformer/`): FunASR-style graph that sherpa-onnx's `from_paraformer` and
  funasr-onnx's `Paraformer` load: inputs `speech` (N, T, 560) LFR+CMVN features and
  `speech_lengths` int32; outputs `logits` (log-probs) and `token_num` int32; plus `am.mvn`,
  `config.yaml` and `tokens.json` for funasr-onnx and LFR/CMVN metadata for sherpa-onnx.
- Attention (`attention/`): `encoder.onnx` (memory, CTC log-probs and the decoder's cross-attention
  keys/values) and `decoder_step.onnx` (one token with the self-attention KV cache in and out).
Every bundle has `tokens.txt`, the symbols the model was trained on, and `narvox.json` (what
narvox.runtime needs to run it), whose `symbol_form` says how the BPE symbols mark words
(narvox.text.tokens.FORMS; null for other vocabularies): sherpa-onnx's CTC text is right only for
"word_start", funasr-onnx's Paraformer reads "continuation".
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from narvox.asr.ctc_attention import CtcAttentionASR
from narvox.asr.paraformer import Paraformer
from narvox.export.onnx_utils import add_metadata, export
from narvox.features import Cmvn, FbankConfig
from narvox.text.tokens import read_tokenizer_meta


class _CtcGraph(nn.Module):
    def __init__(self, model: CtcAttentionASR):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
        log_probs, lens, _ = self.model.ctc_log_probs(x, x_lens)
        return log_probs, lens


class _ParaformerGraph(nn.Module):
    """FunASR's timestamp-Paraformer outputs: logits, token_num, us_alphas, us_cif_peak.

    The last two are at 3x the LFR frame rate (20 ms), as funasr-onnx and sherpa-onnx read them:
    us_cif_peak is 1.0 at the first sub-frame of each frame where a token fires, so all three
    runtimes derive the same token start times from one graph.
    """

    def __init__(self, model: Paraformer):
        super().__init__()
        self.model = model

    def forward(self, speech: Tensor, speech_lengths: Tensor):
        log_probs, token_num, alphas, fired = self.model.infer(speech, speech_lengths.long(), peaks=True)
        us_alphas = (alphas / 3).repeat_interleave(3, dim=1)
        us_peaks = nn.functional.pad(fired.unsqueeze(-1), (0, 2)).flatten(1)
        return log_probs, token_num.int(), us_alphas, us_peaks


class _AttentionEncoderGraph(nn.Module):
    def __init__(self, model: CtcAttentionASR):
        super().__init__()
        self.model = model

    def forward(self, x: Tensor, x_lens: Tensor):
        log_probs, lens, hidden = self.model.ctc_log_probs(x, x_lens)
        cross_k, cross_v = self.model.decoder.cross_kv(hidden)
        return log_probs, lens, cross_k, cross_v


class _DecoderStepGraph(nn.Module):
    def __init__(self, model: CtcAttentionASR):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, tokens, offset, self_k, self_v, cross_k, cross_v, memory_mask):
        return self.decoder.step(tokens, offset, self_k, self_v, cross_k, cross_v, memory_mask)


def _bundle_config(out: Path, kind: str, frame_shift: float, fbank: str, **extra) -> None:
    fb = FbankConfig.preset(fbank)
    (out / "narvox.json").write_text(json.dumps(
        {"kind": kind, "sample_rate": fb.sample_rate, "fbank": fb.to_dict(), "frame_shift": frame_shift,
         **extra}, indent=2))


def _copy_tokens(model_dir: Path, out: Path) -> list[str]:
    shutil.copy(model_dir / "tokens.txt", out / "tokens.txt")
    return [l.split()[0] for l in (out / "tokens.txt").read_text(encoding="utf-8").splitlines()]


def _example_fbank(dim: int, frames: int = 203) -> tuple[Tensor, Tensor]:
    return torch.randn(2, frames, dim), torch.tensor([frames, frames - 37])


def export_ctc(model: CtcAttentionASR, model_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    symbols = _copy_tokens(model_dir, out)
    x, x_lens = _example_fbank(80)
    export(_CtcGraph(model), (x, x_lens), out / "model.onnx", ["x", "x_lens"],
           ["log_probs", "log_probs_lens"],
           {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"},
            "log_probs_lens": {0: "N"}})
    add_metadata(out / "model.onnx", {"model_type": "wenet_ctc", "vocab_size": len(symbols),
                                      "subsampling_factor": model.encoder.subsampling,
                                      "chunk_size": -1, "left_chunks": -1})
    _bundle_config(out, "ctc", model.frame_shift, "kaldi", lfr_m=1, lfr_n=1)
    return out


def export_paraformer(model: Paraformer, model_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    symbols = _copy_tokens(model_dir, out)
    c = model.config
    cmvn = Cmvn.load(model_dir / "am.mvn")
    shutil.copy(model_dir / "am.mvn", out / "am.mvn")
    (out / "tokens.json").write_text(json.dumps(symbols, ensure_ascii=False))
    speech, lens = _example_fbank(80 * c.lfr_m, 41)
    export(_ParaformerGraph(model), (speech, lens.int()), out / "model.onnx", ["speech", "speech_lengths"],
           ["logits", "token_num", "us_alphas", "us_cif_peak"],
           {"speech": {0: "N", 1: "T"}, "speech_lengths": {0: "N"}, "logits": {0: "N", 1: "L"},
            "token_num": {0: "N"}, "us_alphas": {0: "N", 1: "T3"}, "us_cif_peak": {0: "N", 1: "T3"}})
    floats = lambda v: ",".join(f"{x:.8g}" for x in v)
    add_metadata(out / "model.onnx", {
        "model_type": "paraformer", "vocab_size": len(symbols), "lfr_window_size": c.lfr_m,
        "lfr_window_shift": c.lfr_n, "neg_mean": floats(cmvn.neg_mean), "inv_stddev": floats(cmvn.inv_stddev)})
    fb = FbankConfig.preset("funasr")
    (out / "config.yaml").write_text(yaml.safe_dump({  # read by funasr-onnx
        "frontend_conf": {"fs": fb.sample_rate, "window": fb.window_type, "n_mels": fb.num_mel_bins,
                          "frame_length": int(fb.frame_length_ms), "frame_shift": int(fb.frame_shift_ms),
                          "lfr_m": c.lfr_m, "lfr_n": c.lfr_n, "dither": fb.dither},
        "model_conf": {"predictor_bias": c.predictor_bias},
        "model": "Paraformer"}, sort_keys=False))
    _bundle_config(out, "paraformer", model.frame_shift, "funasr", lfr_m=c.lfr_m, lfr_n=c.lfr_n,
                   eos_id=c.eos_id)
    return out


def export_attention(model: CtcAttentionASR, model_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    _copy_tokens(model_dir, out)
    x, x_lens = _example_fbank(80)
    export(_AttentionEncoderGraph(model), (x, x_lens), out / "encoder.onnx", ["x", "x_lens"],
           ["log_probs", "log_probs_lens", "cross_k", "cross_v"],
           {"x": {0: "N", 1: "T"}, "x_lens": {0: "N"}, "log_probs": {0: "N", 1: "T_out"},
            "log_probs_lens": {0: "N"}, "cross_k": {1: "N", 3: "T_out"}, "cross_v": {1: "N", 3: "T_out"}})
    with torch.no_grad():
        _, lens, hidden = model.ctc_log_probs(x, x_lens)
        cross_k, cross_v = model.decoder.cross_kv(hidden)
    n, b, h, t, dh = cross_k.shape
    past = torch.randn(n, b, h, 3, dh)
    mask = torch.arange(t)[None, :] < lens[:, None]
    export(_DecoderStepGraph(model),
           (torch.tensor([[5], [6]]), torch.tensor(3), past, past.clone(), cross_k, cross_v, mask),
           out / "decoder_step.onnx",
           ["tokens", "offset", "self_k", "self_v", "cross_k", "cross_v", "memory_mask"],
           ["log_probs", "new_self_k", "new_self_v"],
           {"tokens": {0: "N"}, "self_k": {1: "N", 3: "t"}, "self_v": {1: "N", 3: "t"},
            "cross_k": {1: "N", 3: "T"}, "cross_v": {1: "N", 3: "T"}, "memory_mask": {0: "N", 1: "T"},
            "log_probs": {0: "N"}, "new_self_k": {1: "N", 3: "t1"}, "new_self_v": {1: "N", 3: "t1"}})
    c = model.config
    _bundle_config(out, "attention", model.frame_shift, "kaldi", lfr_m=1, lfr_n=1, sos_id=c.sos_id,
                   eos_id=c.eos_id, decoder_layers=n, heads=h, head_dim=dh)
    return out


def export_model_dir(model_dir: str | Path, out_root: str | Path) -> list[Path]:
    """Every bundle a trained model directory can give: CTC (+ attention) or Paraformer."""
    from narvox.asr.build import load_model, longest_training_utterance
    model_dir, out_root = Path(model_dir), Path(out_root)
    model, _ = load_model(model_dir)
    if isinstance(model, Paraformer):
        bundles = [export_paraformer(model, model_dir, out_root / "paraformer")]
    else:
        bundles = [export_ctc(model, model_dir, out_root / "ctc")]
        if model.decoder is not None:
            bundles.append(export_attention(model, model_dir, out_root / "attention"))
    longest = longest_training_utterance(model_dir)
    form = read_tokenizer_meta(model_dir).get("form")
    for bundle in bundles:  # the runtime splits recordings below what the model was trained on
        meta = json.loads((bundle / "narvox.json").read_text())
        (bundle / "narvox.json").write_text(json.dumps({**meta, "max_seconds": longest, "symbol_form": form},
                                                       indent=2))
    return bundles
