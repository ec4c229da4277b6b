"""The bundle format: a directory an app can copy (ONNX graphs, tokens and narvox.json) that
narvox.runtime runs without torch. Defined here once; the exporters write it with `write_bundle`,
the runtimes read it with `read_bundle`.

narvox.json, format_version 1:

    format_version  1; a bundle of a newer version is refused, never misread
    kind            its bundle kind, a key of narvox.registry.BUNDLE_KINDS (ctc | attention |
                    paraformer | codec | valle)
    files           role -> file name, e.g. {"model": "model.onnx", "tokens": "tokens.txt",
                    "cmvn": "am.mvn"}
    graphs          ONNX file name -> {"inputs": [...], "outputs": [...]}: the graph's names in
                    the order the runtime feeds and reads them
    any other key   the kind's settings: sample_rate, fbank, frame_shift, lfr_m, lfr_n,
                    min_frames, max_seconds, symbol_form, eos_id... (ASR); codec, weights,
                    frame_rate, codebook_size, hop_length, max_codebooks... (codec); conditioning,
                    n_codebooks, codec, codec_bundle... (valle)

A kind's files and graphs are its registry entry's when written; the runtime reads them from the
bundle, so the names are spelled once (narvox.registry) and every bundle describes itself to apps
in other languages.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from narvox import registry
from narvox.errors import NarvoxError
from narvox.registry import Graph

FORMAT_VERSION = 1
MANIFEST = "narvox.json"
PRETRAINED = Path(__file__).resolve().parent / "pretrained"  # shipped bundles: <family>/<name>/


@dataclass(frozen=True)
class Bundle:
    path: Path
    kind: str
    files: dict[str, str]       # role -> file name
    graphs: dict[str, Graph]    # ONNX file name -> its input and output names
    settings: dict

    @property
    def family(self) -> str:
        return registry.bundle_kind(self.kind).family

    def file(self, role: str) -> Path:
        return self.path / self.files[role]

    def graph(self, role: str) -> Graph:
        return self.graphs[self.files[role]]


def shipped(family: str) -> dict[str, Path]:
    """name -> directory of every bundle of `family` that ships inside the package."""
    return {p.parent.name: p.parent for p in sorted((PRETRAINED / family).glob(f"*/{MANIFEST}"))}


def locate(name_or_dir: str | Path, family: str | None = None) -> Path:
    """The bundle directory `name_or_dir` names: a directory holding narvox.json, else the
    shipped bundle of that name (even when a directory of that name is in the way)."""
    path = Path(name_or_dir)
    if (path / MANIFEST).is_file():
        return path
    for f in [family] if family else registry.RUNTIMES:
        found = shipped(f).get(str(name_or_dir))
        if found is not None:
            return found
    return path


def _refuse(path: Path, problem: str):
    raise NarvoxError(f"{path}: {problem}")


def read_bundle(source: str | Path | Bundle, family: str | None = None) -> Bundle:
    """A bundle directory or shipped name (or a Bundle read before), checked: its format version,
    kind (of `family`, when given), files, graphs and settings. Every fault is a NarvoxError
    naming the bundle."""
    bundle = source if isinstance(source, Bundle) else _parse(locate(source, family), family)
    kind = registry.bundle_kind(bundle.kind, where=bundle.path)
    if family is not None and kind.family != family:
        _refuse(bundle.path, f"a {kind.name} bundle, not {family}")
    for role in kind.files:
        if role not in bundle.files:
            _refuse(bundle.path, f"{MANIFEST} names no {role} file, which a {kind.name} bundle has")
        if not bundle.file(role).is_file():
            _refuse(bundle.path, f"its {role} file {bundle.files[role]} is missing")
    missing = [key for key in kind.settings if key not in bundle.settings]
    if missing:
        _refuse(bundle.path, f"{MANIFEST} lacks {', '.join(missing)}, which a {kind.name} bundle needs")
    for role, expected in kind.graphs_with(bundle.settings).items():
        got = bundle.graphs.get(bundle.files[role])
        if got is None or (len(got.inputs), len(got.outputs)) != (len(expected.inputs), len(expected.outputs)):
            _refuse(bundle.path, f"{MANIFEST} gives {bundle.files[role]} the graph {got}, but a "
                                 f"{kind.name} bundle's has {len(expected.inputs)} inputs and "
                                 f"{len(expected.outputs)} outputs (an older export: export it again)")
    return bundle


def _parse(path: Path, family: str | None) -> Bundle:
    if not (path / MANIFEST).is_file():
        names = [n for f in ([family] if family else registry.RUNTIMES) for n in shipped(f)]
        _refuse(path, f"not a narvox bundle ({MANIFEST} is missing), nor a shipped one ({', '.join(names)})")
    try:
        meta = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        version = meta.get("format_version")
        graphs = {name: Graph(tuple(g["inputs"]), tuple(g["outputs"])) for name, g in meta.get("graphs", {}).items()}
    except (ValueError, AttributeError, KeyError, TypeError) as e:  # not JSON, or not shaped like this
        _refuse(path / MANIFEST, f"not a valid bundle description ({type(e).__name__}: {e})")
    if version is None:
        _refuse(path, f"{MANIFEST} has no format_version: it was written before bundles were "
                      "versioned; export it again with this narvox")
    if not isinstance(version, int) or version < 1:
        _refuse(path, f"format_version {version!r} is no bundle format version")
    if version > FORMAT_VERSION:
        _refuse(path, f"bundle format_version {version}, but this narvox reads 1 to {FORMAT_VERSION}: "
                      "a newer narvox wrote it (pip install -U narvox)")
    settings = {k: v for k, v in meta.items() if k not in ("format_version", "kind", "files", "graphs")}
    return Bundle(path, registry.bundle_kind(meta.get("kind"), where=path).name,
                  dict(meta.get("files", {})), graphs, settings)


def write_bundle(directory: str | Path, kind: str, settings: dict) -> Bundle:
    """Write narvox.json for the `kind` bundle whose files are already in `directory`, and read it
    back, so an exporter that left a file out fails here rather than in an app."""
    entry = registry.bundle_kind(kind)
    graphs = {entry.files[role]: {"inputs": list(g.inputs), "outputs": list(g.outputs)}
              for role, g in entry.graphs_with(settings).items()}
    meta = {"format_version": FORMAT_VERSION, "kind": kind, "files": entry.files, "graphs": graphs, **settings}
    (Path(directory) / MANIFEST).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return read_bundle(directory)
