"""`narvox quantize`: an int8 copy of a bundle that the runtime runs like the original."""
import json

import numpy as np
import pytest

from narvox.bundle import MANIFEST, read_bundle
from narvox.cli import main
from narvox.errors import NarvoxError
from narvox.export.quantize import quantize_bundle
from narvox.runtime.session import create_session


def test_quantized_ctc_bundle_is_smaller_and_close(tmp_path, capsys):
    assert main(["quantize", "ctc", "--out", str(tmp_path / "q")]) == 0
    original, quantized = read_bundle("ctc"), read_bundle(tmp_path / "q")
    assert quantized.settings["quantization"] == "int8-dynamic" and quantized.kind == "ctc"
    graph = original.files["model"]
    assert (quantized.path / graph).stat().st_size < 0.6 * (original.path / graph).stat().st_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 300, 80)).astype(np.float32) * 3 + 5
    feeds = {"x": x, "x_lens": np.array([300], dtype=np.int64)}
    a = create_session(original.path / graph).run(None, feeds)[0]
    b = create_session(quantized.path / graph).run(None, feeds)[0]
    assert a.shape == b.shape
    assert np.mean(a.argmax(-1) == b.argmax(-1)) > 0.9  # the same best token on most frames


def test_quantize_refuses_twice_and_a_full_directory(tmp_path):
    quantize_bundle("ctc", tmp_path / "q")
    with pytest.raises(NarvoxError, match="already quantized"):
        quantize_bundle(tmp_path / "q", tmp_path / "q2")
    with pytest.raises(NarvoxError, match="not empty"):
        quantize_bundle("ctc", tmp_path / "q")
    assert json.loads((tmp_path / "q" / MANIFEST).read_text())["kind"] == "ctc"
