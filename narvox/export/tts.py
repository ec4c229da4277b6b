"""Export a TTS model directory to an ONNX bundle (<backend>_<conditioning>): the computations its
generation loop runs on (VALL-E, narvox.tts.decoding: encode.onnx, lm.onnx with the codebook-1
KV cache in and out, residual.onnx; masked and par, narvox.tts.mask_predict / pseudo_ar: encode.onnx,
levels.onnx),
the phone vocabulary, shipped voices, and narvox.json.

The bundle names the codec it speaks through (its identity and bundle: "narvox", the shipped one,
or a path relative to the bundle) rather than copying it: the runtime loads that codec's decoder
(and its encoder, for prompt recordings) and refuses one of another identity.

Voices: one prompt per speaker of a data dir (`text_phones`, `codes_<codec>.bin`), picked as the
evaluation picks prompts (narvox.recipes.tts_eval), so the shipped voices are the corpus's.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn

from narvox import registry
from narvox.bundle import write_bundle
from narvox.export.onnx_utils import export, store_weights_as_float16
from narvox.tts.ar import ValleTTS
from narvox.tts.core import TtsBackend
from narvox.tts.decoding import GenerateOptions
from narvox.tts.levels import LevelPredictor


class _EncodeGraph(nn.Module):
    """Aligned: phones and the prompt (its voice sets the durations) -> states and durations."""

    def __init__(self, model: TtsBackend):
        super().__init__()
        self.model = model

    def forward(self, phones, phone_lens, prompt, prompt_lens):
        return self.model.encode(phones, phone_lens, prompt, prompt_lens)


class _PrefixEncodeGraph(_EncodeGraph):
    """Prefix: the prompt's and the target's phones -> states (no durations)."""

    def forward(self, phones, phone_lens):
        return self.model.encode(phones, phone_lens, None, None)[:-1]


class _LmGraph(nn.Module):
    def __init__(self, model: ValleTTS):
        super().__init__()
        self.first = model.first

    def forward(self, tokens, text, frame_cond, is_text, is_prompt, positions, key_valid, key_is_text, keys, values):
        return self.first.run(tokens, text, frame_cond, is_text, is_prompt, positions, key_valid, key_is_text,
                              keys, values)


class _LevelsGraph(nn.Module):
    """A LevelPredictor's logits; `whole_levels` (VALL-E's residual stage) knows nothing of the
    level it predicts, so its graph takes no `known`."""

    def __init__(self, levels: LevelPredictor, whole_levels: bool):
        super().__init__()
        self.levels, self.whole_levels = levels, whole_levels

    def forward(self, text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, known=None):
        if self.whole_levels:
            known = torch.zeros_like(target[:, 0], dtype=torch.bool)
        return self.levels.logits(text, text_lens, prompt, prompt_lens, target, target_lens, frame_cond, level, known)


def shipped_voices(data_dir: str | Path, model_dir: str | Path, codec: dict, config) -> dict[str, np.ndarray]:
    """voices.npz's arrays: `names`, and per voice i `codes_i` [Q, P] and `phones_i` (the prompt's
    text, whole under the prefix conditioning). config: the model's TtsConfig."""
    from narvox.codecs.dump import CodesFile, codes_path
    from narvox.data.kaldi import read_data_dir
    from narvox.recipes.tts_eval import choose_prompts
    from narvox.text.tokens import TokenTable
    data = read_data_dir(data_dir)
    codes = CodesFile(codes_path(data_dir, codec["codec"]))
    codes.check_codec(codec)
    items, _ = choose_prompts(data, codes, TokenTable.load(Path(model_dir) / "tokens.txt"),
                              config.conditioning == "prefix", config.prompt_seconds)
    arrays, names = {}, []
    for item in items:
        speaker = data.utt2spk[item.utt]
        if speaker in names:
            continue
        arrays[f"codes_{len(names)}"] = item.prompt[:config.n_codebooks].astype(np.int16)
        arrays[f"phones_{len(names)}"] = item.prompt_phones
        names.append(speaker)
    arrays["names"] = np.array(names)
    return arrays


def export_tts(model_dir: str | Path, out_dir: str | Path, voices_from: str | Path | None = None,
               codec_bundle: str = "narvox", half_weights: bool = True, sampling: dict | None = None,
               decoding: dict | None = None) -> Path:
    """The bundle of a TTS model directory (bundle kind <backend>_<conditioning>). `sampling`:
    the bundle's default SamplingOptions fields (what its recipe found best), which narvox.TTS
    uses unless told otherwise; `decoding`: a pseudo-AR model's default `span` (else the one it
    was trained on) and `refine_steps` (else GenerateOptions'), chosen the same way."""
    from narvox.text.tokens import read_tokenizer_meta
    from narvox.tts.build import load_model
    model, config, codec = load_model(model_dir)
    c = model.config
    if c.n_codebooks < 2:
        raise ValueError(f"{model_dir}: exporting needs a model of 2 or more codebooks")
    decoding = dict(decoding or {})
    if decoding and (config["kind"] != "par" or not set(decoding) <= {"span", "refine_steps"}):
        raise ValueError(f"decoding defaults {sorted(decoding)}: only a pseudo-AR model takes them (span, refine_steps)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    kind = registry.bundle_kind(f"{config['kind']}_{c.conditioning}")
    files = {role: out_dir / name for role, name in kind.files.items()}
    b, d, q = 2, c.d_model, c.n_codebooks
    phones, phone_lens = torch.randint(4, c.n_phones, (b, 7)), torch.tensor([7, 5])
    prompt, prompt_lens = torch.randint(0, c.codebook_size, (b, q, 9)), torch.tensor([9, 6])
    n_states = 2 if config["kind"] == "valle" else 1
    states = [{0: "B", 1: "L"}] * n_states
    if c.conditioning == "aligned":
        paths = [export(_EncodeGraph(model), (phones, phone_lens, prompt, prompt_lens), files["encode"],
                        kind.graphs["encode"], [{0: "B", 1: "L"}, {0: "B"}, {0: "B", 2: "P"}, {0: "B"}, *states,
                                                {0: "B", 1: "L"}])]
    else:
        paths = [export(_PrefixEncodeGraph(model), (phones, phone_lens), files["encode"], kind.graphs["encode"],
                        [{0: "B", 1: "L"}, {0: "B"}, *states])]
    t = 6
    level_args = [torch.randn(b, 5, d), torch.tensor([5, 3]), prompt, prompt_lens,
                  torch.randint(0, c.codebook_size, (b, q, t)), torch.tensor([6, 4]), torch.randn(b, t, d),
                  torch.tensor([1, q - 1])]
    level_axes = [{0: "B", 1: "L"}, {0: "B"}, {0: "B", 2: "P"}, {0: "B"}, {0: "B", 2: "T"}, {0: "B"},
                  {0: "B", 1: "T"}, {0: "B"}]
    settings = {}
    if config["kind"] == "valle":
        paths.append(_export_lm(model, files["lm"], kind.graphs["lm"]))
        paths.append(export(_LevelsGraph(model.rest, whole_levels=True), tuple(level_args), files["residual"],
                            kind.graphs["residual"], [*level_axes, {0: "B", 1: "T"}]))
        settings = {"layers": c.layers, "heads": c.n_heads, "head_dim": d // c.n_heads}
    else:
        if config["kind"] == "par":  # decoding's defaults (the span: the least it was trained to extend), its look-ahead
            settings = {"span": float(decoding.get("span", c.par_span)), "lookahead": c.par_lookahead,
                        "refine_steps": int(decoding.get("refine_steps", GenerateOptions.refine_steps))}
        known = torch.rand(b, t) < 0.5
        paths.append(export(_LevelsGraph(model.levels, whole_levels=False), (*level_args, known), files["levels"],
                            kind.graphs["levels"], [*level_axes, {0: "B", 1: "T"}, {0: "B", 1: "T"}]))
    if half_weights:
        for path in paths:
            store_weights_as_float16(path)
    shutil.copy(Path(model_dir) / "tokens.txt", files["tokens"])
    voices = (shipped_voices(voices_from, model_dir, codec, c) if voices_from
              else {"names": np.array([], dtype=str)})
    np.savez(files["voices"], **voices)
    write_bundle(out_dir, kind.name, {
        "conditioning": c.conditioning, "n_codebooks": q, "codebook_size": c.codebook_size, "d_model": d,
        "language": read_tokenizer_meta(model_dir).get("language", "en-us"), "codec": codec,
        "codec_bundle": codec_bundle, "prompt_seconds": c.prompt_seconds,
        "sampling": dict(sampling or {}), **settings})
    return out_dir


def _export_lm(model: ValleTTS, path: Path, graph) -> Path:
    """VALL-E's codebook-1 stage with its KV cache in and out."""
    c, b, n, past = model.config, 2, 3, 4
    d = c.d_model
    slot = torch.zeros(b, n, dtype=torch.bool)
    cache = torch.randn(c.layers, b, c.n_heads, past, d // c.n_heads)
    args = (torch.randint(0, c.codebook_size, (b, n)), torch.randn(b, n, d), torch.randn(b, n, d), slot, slot | True,
            torch.arange(n).repeat(b, 1) + past, torch.ones(b, past + n, dtype=torch.bool),
            torch.zeros(b, past + n, dtype=torch.bool), cache, cache.clone())
    slots, keys, cache_axes = {0: "B", 1: "n"}, {0: "B", 1: "S"}, {1: "B", 3: "past"}
    return export(_LmGraph(model), args, path, graph,
                  [slots, slots, slots, slots, slots, slots, keys, keys, cache_axes, cache_axes, slots,
                   {1: "B", 3: "S"}, {1: "B", 3: "S"}])
