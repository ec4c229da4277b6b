"""Every model kind narvox knows, in one place, with the one vocabulary of kinds and decoding methods.

Two sorts of kind, because one trained model can give several deployable bundles:

* a training kind is what a recipe config's `model.kind` names: one PyTorch class, trained once
  (`ctc_attention`, `paraformer`, `codec`);
* a bundle kind is what a bundle's narvox.json names: a set of ONNX graphs and the runtime that
  runs them (`ctc`, `attention`, `paraformer`, `codec`). A `ctc_attention` model exports to two:
  one encoder decoded by its CTC head (`ctc`) or by its attention decoder (`attention`).

Decoding methods are `greedy` and `beam`, each bundle kind offering some. A model directory with
several heads takes `<head>_<method>` (`attention_beam`) to pick one; those are also the names
older releases, the recipes and the PyTorch models use, so they are accepted everywhere.

Classes and functions are named by dotted path and imported on first use, so this module (and
narvox.bundle and narvox.runtime, which read it) never imports torch. Adding a kind touches its
entry here and its own files: model, export function and runtime runner.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Sequence

from narvox.errors import NarvoxError


@dataclass(frozen=True)
class Graph:
    """An ONNX graph's input and output names, in the order the exporter traces them and the
    runtime feeds and reads them."""
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    def per_layer(self, layers: int) -> Graph:
        """The graph with each `name*` (a tensor per decoder layer: separate inputs, because
        ONNX Runtime copies whatever a graph slices out of a stacked one) spelled out as
        name0 ... name<layers - 1>."""
        def spell(names: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(n for name in names
                         for n in ([f"{name[:-1]}{i}" for i in range(layers)] if name.endswith("*") else [name]))
        return Graph(spell(self.inputs), spell(self.outputs))


@dataclass(frozen=True)
class BundleKind:
    name: str
    family: str                     # a key of RUNTIMES; also the folder of shipped bundles
    export: str                     # the function that writes such a bundle from a PyTorch model
    runner: str | None              # ASR: the class that runs the kind's graphs inside OnnxASR
    files: dict[str, str]           # role -> file name in the bundle
    graphs: dict[str, Graph]        # role of an ONNX file -> its input and output names
    settings: tuple[str, ...]       # narvox.json keys the runtime cannot do without
    methods: tuple[str, ...] = ()   # decoding methods, the default first

    def graphs_with(self, settings: dict) -> dict[str, Graph]:
        """role -> the graph of a bundle with these settings: per-layer names spelled out."""
        return {role: g.per_layer(settings.get(LAYERS, 0)) for role, g in self.graphs.items()}


@dataclass(frozen=True)
class TrainingKind:
    name: str
    family: str
    model: str                      # the PyTorch class
    config: str                     # its config dataclass
    bundles: tuple[str, ...]        # the bundle kinds it exports to; the first decodes by default
    fbank: str | None = None        # ASR: the fbank preset it is trained on (narvox.features)
    lfr: bool = False               # ASR: LFR-stacked, am.mvn-normalised fbank, no subsampling


# what narvox.runtime.load_bundle returns for a bundle of each family
RUNTIMES = {"asr": "narvox.runtime.asr:OnnxASR", "codec": "narvox.runtime.codec:OnnxCodec",
            "tts": "narvox.runtime.tts:OnnxTTS"}

LAYERS = "decoder_layers"  # the setting that spells out a graph's per-layer names (Graph.per_layer)
_ASR_SETTINGS = ("sample_rate", "fbank", "frame_shift", "lfr_m", "lfr_n", "min_frames")
_CTC_ENCODER = Graph(("x", "x_lens"), ("log_probs", "log_probs_lens"))

_TTS_FILES = {"tokens": "tokens.txt", "voices": "voices.npz"}
_TTS_SETTINGS = ("conditioning", "n_codebooks", "codebook_size", "d_model", "language", "codec", "codec_bundle",
                 "prompt_seconds")
_LEVEL_INPUTS = ("text", "text_lens", "prompt", "prompt_lens", "target", "target_lens", "frame_cond", "level")
_STATES = ("first_states", "rest_states")
_TTS_ENCODERS = (  # conditioning -> the encode graph of a backend with n stages
    ("aligned", lambda n: Graph(("phones", "phone_lens", "prompt", "prompt_lens"), (*_STATES[:n], "log_durations"))),
    ("prefix", lambda n: Graph(("phones", "phone_lens"), _STATES[:n])))

BUNDLE_KINDS = {k.name: k for k in (
    BundleKind(
        "ctc", "asr", "narvox.export.asr:export_ctc", "narvox.runtime.asr:CtcRunner",
        files={"model": "model.onnx", "tokens": "tokens.txt"},
        graphs={"model": _CTC_ENCODER},  # what sherpa-onnx's WeNet CTC reads
        settings=_ASR_SETTINGS,
        methods=("greedy", "beam")),
    BundleKind(
        "attention", "asr", "narvox.export.asr:export_attention", "narvox.runtime.asr:AttentionRunner",
        files={"encoder": "encoder.onnx", "decoder": "decoder_step.onnx", "tokens": "tokens.txt"},
        # cross_k*: each layer's cross-attention keys, transposed and scaled for the step's one matmul
        graphs={"encoder": Graph(_CTC_ENCODER.inputs, (*_CTC_ENCODER.outputs, "cross_k*", "cross_v*")),
                "decoder": Graph(("tokens", "offset", "self_k", "self_v", "cross_k*", "cross_v*", "memory_mask"),
                                 ("log_probs", "new_self_k", "new_self_v"))},
        settings=(*_ASR_SETTINGS, "sos_id", "eos_id", LAYERS),
        methods=("greedy", "beam", "rescore")),  # rescore: the CTC beam's n-best, by the decoder
    BundleKind(
        "paraformer", "asr", "narvox.export.asr:export_paraformer", "narvox.runtime.asr:ParaformerRunner",
        # tokens.json and config.yaml are what funasr-onnx reads
        files={"model": "model.onnx", "tokens": "tokens.txt", "cmvn": "am.mvn",
               "funasr_tokens": "tokens.json", "funasr_config": "config.yaml"},
        graphs={"model": Graph(("speech", "speech_lengths"), ("logits", "token_num", "us_alphas", "us_cif_peak"))},
        settings=_ASR_SETTINGS,
        methods=("greedy",)),
    BundleKind(
        "codec", "codec", "narvox.export.codec:export_codec", None,
        files={"encoder": "encoder.onnx", "decoder": "decoder.onnx"},
        graphs={"encoder": Graph(("wav",), ("codes",)), "decoder": Graph(("codes",), ("wav",))},
        settings=("codec", "weights", "sample_rate", "frame_rate", "codebook_size", "hop_length",
                  "max_codebooks", "n_codebooks", "min_frames")),
    # TTS: one bundle kind per backend and conditioning (their text encoders differ: the aligned
    # one also predicts durations, from the prompt's voice). The codec is named (settings "codec":
    # its identity, "codec_bundle": where it is), not copied.
    *(BundleKind(
        # VALL-E: what narvox.tts.decoding generates with
        f"valle_{conditioning}", "tts", "narvox.export.tts:export_tts", None,
        files={"encode": "encode.onnx", "lm": "lm.onnx", "residual": "residual.onnx", **_TTS_FILES},
        graphs={"encode": encode(2),
                "lm": Graph(("tokens", "text", "frame_cond", "is_text", "is_prompt", "positions", "key_valid",
                             "key_is_text", "keys", "values"), ("logits", "new_keys", "new_values")),
                "residual": Graph(_LEVEL_INPUTS, ("logits",))},
        settings=(*_TTS_SETTINGS, "layers", "heads", "head_dim"))
      for conditioning, encode in _TTS_ENCODERS),
    *(BundleKind(
        # masked: what narvox.tts.mask_predict generates with; par (pseudo-AR): the same graphs,
        # filled in another order by narvox.tts.pseudo_ar
        f"{backend}_{conditioning}", "tts", "narvox.export.tts:export_tts", None,
        files={"encode": "encode.onnx", "levels": "levels.onnx", **_TTS_FILES},
        graphs={"encode": encode(1), "levels": Graph((*_LEVEL_INPUTS, "known"), ("logits",))},
        settings=(*_TTS_SETTINGS, "span") if backend == "par" else _TTS_SETTINGS)
      for backend in ("masked", "par") for conditioning, encode in _TTS_ENCODERS),
)}

TRAINING_KINDS = {k.name: k for k in (
    TrainingKind("ctc_attention", "asr", "narvox.asr.ctc_attention:CtcAttentionASR",
                 "narvox.asr.ctc_attention:CtcAttentionConfig", ("ctc", "attention"), fbank="kaldi"),
    TrainingKind("paraformer", "asr", "narvox.asr.paraformer:Paraformer",
                 "narvox.asr.paraformer:ParaformerConfig", ("paraformer",), fbank="funasr", lfr=True),
    TrainingKind("codec", "codec", "narvox.codecs.model:CodecModel", "narvox.codecs.model:CodecConfig",
                 ("codec",)),
    # one bundle kind per conditioning: their text encoders differ
    TrainingKind("valle", "tts", "narvox.tts.ar:ValleTTS", "narvox.tts.core:TtsConfig",
                 ("valle_aligned", "valle_prefix")),
    TrainingKind("masked", "tts", "narvox.tts.masked:MaskedTTS", "narvox.tts.core:TtsConfig",
                 ("masked_aligned", "masked_prefix")),
    TrainingKind("par", "tts", "narvox.tts.par:PseudoArTTS", "narvox.tts.core:TtsConfig",
                 ("par_aligned", "par_prefix")),
)}


def _lookup(table: dict, name, what: str, where: object | None):
    if name not in table:
        prefix = f"{where}: " if where is not None else ""
        raise NarvoxError(f"{prefix}unknown {what} {name!r} (one of {', '.join(table)})")
    return table[name]


def bundle_kind(name: str, where: object | None = None) -> BundleKind:
    """The entry of a bundle kind; `where` (a bundle path) names the culprit in the error."""
    return _lookup(BUNDLE_KINDS, name, "bundle kind", where)


def training_kind(name: str, where: object | None = None) -> TrainingKind:
    return _lookup(TRAINING_KINDS, name, "model kind", where)


def load(dotted: str):
    """The class or function `module.path:name` names, imported now."""
    module, name = dotted.split(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Decoding:
    kind: str    # the bundle kind (the head) that decodes
    method: str  # greedy | beam

    @property
    def name(self) -> str:
        """`<head>_<method>`: what a model with several heads (and its transcribe()) calls it."""
        return f"{self.kind}_{self.method}"


def decoding(method: str, kinds: Sequence[str], where: object) -> Decoding:
    """The decoding a user's method name asks of a model that decodes as `kinds` (a bundle's one
    kind, or a model directory's bundle kinds in order). A plain method goes to the first kind
    offering it, a `<head>_<method>` name to its head; anything else is refused here, before any
    audio is read."""
    offered = [Decoding(kind, m) for kind in kinds for m in BUNDLE_KINDS[kind].methods]
    for d in offered:
        if method in (d.method, d.name):
            return d
    names = [d.method if len(kinds) == 1 else d.name for d in offered]
    raise NarvoxError(f"{where} decodes with {' | '.join(names)}, not '{method}'")
