"""The bundle format (narvox.json, format_version 1) and the model registry: shipped bundles are
read as written, every fault names the bundle, every kind resolves, one vocabulary of methods."""
import json
import re

import pytest

from narvox import registry
from narvox.asr.api import ASR
from narvox.bundle import FORMAT_VERSION, MANIFEST, read_bundle, shipped
from narvox.errors import NarvoxError
from narvox.runtime import OnnxASR, OnnxCodec, load_bundle
from narvox.runtime.session import create_session

SHIPPED = {name: path for family in registry.RUNTIMES for name, path in shipped(family).items()}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_bundles_record_their_files_and_the_graphs_real_names(name):
    bundle = read_bundle(name)
    meta = json.loads((SHIPPED[name] / MANIFEST).read_text())
    assert meta["format_version"] == FORMAT_VERSION and bundle.files == registry.bundle_kind(bundle.kind).files
    for file, graph in bundle.graphs.items():
        session = create_session(bundle.path / file)
        assert tuple(i.name for i in session.get_inputs()) == graph.inputs, file
        assert tuple(o.name for o in session.get_outputs()) == graph.outputs, file


def test_load_bundle_gives_each_family_its_runtime():
    assert isinstance(load_bundle("paraformer"), OnnxASR) and isinstance(load_bundle("ctc"), OnnxASR)
    codec = load_bundle("narvox", n_codebooks=2)
    assert isinstance(codec, OnnxCodec) and codec.n_codebooks == 2
    assert isinstance(load_bundle(SHIPPED["ctc"]), OnnxASR)


def _copy(tmp_path, name="ctc", **changes):
    """A shipped bundle's narvox.json with `changes` (None deletes a key), beside links to its files."""
    out = tmp_path / name
    out.mkdir()
    for f in SHIPPED[name].iterdir():
        if f.name != MANIFEST:
            (out / f.name).symlink_to(f)
    meta = json.loads((SHIPPED[name] / MANIFEST).read_text())
    meta.update(changes)
    (out / MANIFEST).write_text(json.dumps({k: v for k, v in meta.items() if v is not None}))
    return out


@pytest.mark.parametrize("changes,message", [
    ({"format_version": FORMAT_VERSION + 1}, "format_version 2, but this narvox reads 1 to 1"),
    ({"format_version": None}, "no format_version: it was written before bundles were versioned"),
    ({"kind": "transducer"}, "unknown bundle kind 'transducer'"),
    ({"files": {"model": "gone.onnx", "tokens": "tokens.txt"}}, "its model file gone.onnx is missing"),
    ({"files": {"model": "model.onnx"}}, "names no tokens file"),
    ({"graphs": {"model.onnx": {"inputs": ["x"], "outputs": ["y"]}}}, "a ctc bundle's has 2 inputs and 2 outputs"),
    ({"min_frames": None}, "lacks min_frames"),
])
def test_a_bad_bundle_is_refused_naming_it(tmp_path, changes, message):
    bundle = _copy(tmp_path, **changes)
    for load in (read_bundle, OnnxASR, load_bundle, ASR.from_pretrained):
        with pytest.raises(NarvoxError, match=message) as caught:
            load(bundle)
        assert str(bundle) in str(caught.value)


def test_a_directory_that_is_no_bundle_and_a_bundle_of_another_family(tmp_path):
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(NarvoxError, match="not a valid bundle description"):
        read_bundle(tmp_path)
    with pytest.raises(NarvoxError, match="narvox.json is missing"):
        read_bundle(tmp_path / "nothing")
    with pytest.raises(NarvoxError, match="a codec bundle, not asr"):
        OnnxASR(SHIPPED["narvox"])
    with pytest.raises(NarvoxError, match="a ctc bundle, not codec"):
        OnnxCodec(SHIPPED["ctc"])


def test_every_kind_resolves_and_training_kinds_export_to_bundle_kinds():
    for kind in registry.BUNDLE_KINDS.values():
        assert kind.family in registry.RUNTIMES and callable(registry.load(kind.export))
        assert kind.runner is None or callable(registry.load(kind.runner))
        assert set(kind.graphs) <= set(kind.files)
    produced = set()
    for kind in registry.TRAINING_KINDS.values():
        assert callable(registry.load(kind.model)) and callable(registry.load(kind.config))
        assert all(registry.bundle_kind(b).family == kind.family for b in kind.bundles)
        produced |= set(kind.bundles)
    assert produced == set(registry.BUNDLE_KINDS)


def test_one_vocabulary_of_decoding_methods():
    heads = registry.training_kind("ctc_attention").bundles
    assert registry.decoding("greedy", heads, "m") == registry.Decoding("ctc", "greedy")
    assert registry.decoding("attention_beam", heads, "m") == registry.Decoding("attention", "beam")
    assert registry.decoding("ctc_beam", ["ctc"], "b").name == "ctc_beam"  # the older name of a bundle's method
    with pytest.raises(NarvoxError, match=re.escape("m decodes with ctc_greedy | ctc_beam | attention_greedy | "
                                                    "attention_beam | attention_rescore, not 'sampling'")):
        registry.decoding("sampling", heads, "m")
    with pytest.raises(NarvoxError, match="decodes with greedy, not 'beam'"):  # refused before any audio
        ASR.from_pretrained("paraformer", method="beam")
    with pytest.raises(NarvoxError, match=r"the ctc bundle .* decodes with greedy \| beam, not 'attention_beam'"):
        OnnxASR("ctc").method("attention_beam")
