"""Export narvox ASR models as bundles that need no torch.

- CTC (`ctc/`): WeNet-style graph that sherpa-onnx's `from_wenet_ctc` loads: inputs `x` fbank
  (N, T, 80) and `x_lens` int64, CMVN inside; outputs `log_probs`, `log_probs_lens`.
- Paraformer (`paraformer/`): FunASR-style graph that sherpa-onnx's `from_paraformer` and
  funasr-onnx's `Paraformer` load: inputs `speech` (N, T, 560) LFR+CMVN features and
  `speech_lengths` int32; outputs `logits` (log-probs) and `token_num` int32; plus `am.mvn`,
  `config.yaml` and `tokens.json` for funasr-onnx and LFR/CMVN metadata for sherpa-onnx.
- Attention (`attention/`): `encoder.onnx` (CTC log-probs and each decoder layer's cross-attention
  keys, transposed and scaled, and values: `cross_k0`.., `cross_v0`..) and `decoder_step.onnx` (one
  token with the self-attention KV cache in and out, and the cross keys/values as they came).
The names of the graphs' inputs and outputs and of the files are each kind's narvox.registry
entry's. Every bundle has `tokens.txt`, the symbols the model was trained on, and `narvox.json`
(narvox.bundle: what narvox.runtime needs to run it), whose `symbol_form` says how the BPE symbols
mark words (narvox.text.tokens.FORMS; null for other vocabularies): sherpa-onnx's CTC text is right
only for "word_start", funasr-onnx's Paraformer reads "continuation".
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import Tensor, nn

from narvox import registry
from narvox.asr.ctc_attention import CtcAttentionASR
from narvox.asr.frontend import AsrFrontend
from narvox.asr.paraformer import Paraformer
from narvox.bundle import write_bundle
from narvox.export.onnx_utils import add_metadata, export
from narvox.text.tokens import TokenTable, read_tokenizer_meta


@dataclass(frozen=True)
class TrainedASR:
    """What every ASR bundle is exported from."""
    model: nn.Module
    model_dir: Path        # tokens.txt, tokenizer.json, am.mvn and the training config.yaml
    frontend: AsrFrontend
    tokens: TokenTable


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
        """... -> log_probs, lens, every layer's cross keys, then every layer's cross values."""
        log_probs, lens, hidden = self.model.ctc_log_probs(x, x_lens)
        cross_kv = self.model.decoder.cross_kv(hidden)
        return log_probs, lens, *(k for k, _ in cross_kv), *(v for _, v in cross_kv)


class _DecoderStepGraph(nn.Module):
    def __init__(self, model: CtcAttentionASR):
        super().__init__()
        self.decoder = model.decoder

    def forward(self, tokens, offset, self_k, self_v, *cross_and_mask):
        *cross, memory_mask = cross_and_mask
        n = len(cross) // 2
        return self.decoder.step(tokens, offset, self_k, self_v, list(zip(cross[:n], cross[n:])), memory_mask)


def _example_fbank(dim: int, frames: int = 203) -> tuple[Tensor, Tensor]:
    return torch.randn(2, frames, dim), torch.tensor([frames, frames - 37])


def _files(kind: registry.BundleKind, out: Path) -> dict[str, Path]:
    """role -> path of each file of the `kind` bundle in `out` (which it creates)."""
    out.mkdir(parents=True, exist_ok=True)
    return {role: out / name for role, name in kind.files.items()}


# Each export writes the graphs and files of its bundle kind into `out` and returns the kind's own
# settings for narvox.json (export_model_dir adds the tokens and what every ASR bundle records).

def export_ctc(trained: TrainedASR, kind: registry.BundleKind, out: Path) -> dict:
    model = trained.model
    x, x_lens = _example_fbank(80)
    path = export(_CtcGraph(model), (x, x_lens), _files(kind, out)["model"], kind.graphs["model"],
                  [{0: "N", 1: "T"}, {0: "N"}, {0: "N", 1: "T_out"}, {0: "N"}])
    add_metadata(path, {"model_type": "wenet_ctc", "vocab_size": len(trained.tokens),
                        "subsampling_factor": model.encoder.subsampling, "chunk_size": -1, "left_chunks": -1})
    return {}


def export_paraformer(trained: TrainedASR, kind: registry.BundleKind, out: Path) -> dict:
    model, c = trained.model, trained.model.config
    cmvn, files = trained.frontend.cmvn, _files(kind, out)
    shutil.copy(trained.model_dir / "am.mvn", files["cmvn"])
    trained.tokens.save_json(files["funasr_tokens"])
    speech, lens = _example_fbank(80 * c.lfr_m, 41)
    path = export(_ParaformerGraph(model), (speech, lens.int()), files["model"], kind.graphs["model"],
                  [{0: "N", 1: "T"}, {0: "N"}, {0: "N", 1: "L"}, {0: "N"}, {0: "N", 1: "T3"}, {0: "N", 1: "T3"}])
    floats = lambda v: ",".join(f"{x:.8g}" for x in v)  # noqa: E731
    add_metadata(path, {
        "model_type": "paraformer", "vocab_size": len(trained.tokens), "lfr_window_size": c.lfr_m,
        "lfr_window_shift": c.lfr_n, "neg_mean": floats(cmvn.neg_mean), "inv_stddev": floats(cmvn.inv_stddev)})
    fb = trained.frontend.fbank_config
    files["funasr_config"].write_text(yaml.safe_dump({  # read by funasr-onnx
        "frontend_conf": {"fs": fb.sample_rate, "window": fb.window_type, "n_mels": fb.num_mel_bins,
                          "frame_length": int(fb.frame_length_ms), "frame_shift": int(fb.frame_shift_ms),
                          "lfr_m": c.lfr_m, "lfr_n": c.lfr_n, "dither": fb.dither},
        "model_conf": {"predictor_bias": c.predictor_bias},
        "model": "Paraformer"}, sort_keys=False))
    return {"eos_id": c.eos_id}


def export_attention(trained: TrainedASR, kind: registry.BundleKind, out: Path) -> dict | None:
    """None for a model without an attention decoder (a pure CTC model)."""
    model = trained.model
    if model.decoder is None:
        return None
    files = _files(kind, out)
    x, x_lens = _example_fbank(80)
    with torch.no_grad():
        _, lens, hidden = model.ctc_log_probs(x, x_lens)
        cross_kv = model.decoder.cross_kv(hidden)
    n = len(cross_kv)
    b, h, t, dh = cross_kv[0][1].shape
    cross_axes = [{0: "N", 3: "T_out"}] * n + [{0: "N", 2: "T_out"}] * n  # keys [N, h, dh, T], values [N, h, T, dh]
    export(_AttentionEncoderGraph(model), (x, x_lens), files["encoder"], kind.graphs["encoder"].per_layer(n),
           [{0: "N", 1: "T"}, {0: "N"}, {0: "N", 1: "T_out"}, {0: "N"}, *cross_axes])
    past = torch.randn(n, b, h, 3, dh)
    mask = torch.arange(t)[None, :] < lens[:, None]
    export(_DecoderStepGraph(model),
           (torch.tensor([[5], [6]]), torch.tensor(3), past, past.clone(), *(k for k, _ in cross_kv),
            *(v for _, v in cross_kv), mask),
           files["decoder"], kind.graphs["decoder"].per_layer(n),
           [{0: "N"}, {}, {1: "N", 3: "t"}, {1: "N", 3: "t"}, *cross_axes, {0: "N", 1: "T"},
            {0: "N"}, {1: "N", 3: "t1"}, {1: "N", 3: "t1"}])
    c = model.config
    return {"sos_id": c.sos_id, "eos_id": c.eos_id, registry.LAYERS: n, "heads": h, "head_dim": dh}


def _min_frames(model: nn.Module) -> int:
    """The fewest feature frames the encoder turns into at least one frame."""
    frames = torch.arange(1, 64)
    return int(frames[model.encoder.output_lengths(frames) >= 1][0])


def export_model_dir(model_dir: str | Path, out_root: str | Path) -> list[Path]:
    """Every bundle a trained model directory gives (its training kind's bundle kinds), each in
    `out_root/<bundle kind>`."""
    from narvox.asr.build import load_model, longest_training_utterance
    model_dir, out_root = Path(model_dir), Path(out_root)
    model, config = load_model(model_dir)
    frontend = AsrFrontend.for_config(config, model_dir)
    trained = TrainedASR(model, model_dir, frontend, TokenTable.load(model_dir / "tokens.txt"))
    common = {**frontend.settings(), "frame_shift": model.frame_shift, "min_frames": _min_frames(model),
              # the runtime splits recordings below what the model was trained on
              "max_seconds": longest_training_utterance(model_dir),
              "symbol_form": read_tokenizer_meta(model_dir).get("form")}
    bundles = []
    for kind in map(registry.bundle_kind, registry.training_kind(config["kind"]).bundles):
        out = out_root / kind.name
        own = registry.load(kind.export)(trained, kind, out)
        if own is None:
            continue
        shutil.copy(model_dir / "tokens.txt", out / kind.files["tokens"])
        bundles.append(write_bundle(out, kind.name, {**common, **own}).path)
    return bundles
