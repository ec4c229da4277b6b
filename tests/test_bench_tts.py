"""bench/tts.py's speed measurements on a tiny bundle (the quality part is tts_eval's, tested
with the recipe)."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from tts import cache_versus_recompute, default_options, markdown, plot_tradeoff, speed, streaming  # noqa: E402

from narvox.recipes.tts_eval import Item, open_tts  # noqa: E402
from tests.test_tts_export import tiny_model_dir  # noqa: E402


def test_speed_rows(tmp_path):
    from narvox.export.tts import export_tts
    model_dir, _ = tiny_model_dir(tmp_path, "prefix")
    bundle = export_tts(model_dir, tmp_path / "bundle")
    rng = np.random.default_rng(0)
    items = [Item(f"u{i}", rng.integers(4, 20, 6), "p", rng.integers(0, 1024, (8, 20)), rng.integers(4, 20, 3), 0)
             for i in range(3)]
    frames = [10, 14, 12]
    result = {"threads": 1, "judges": ["ctc"], "systems": {"valle_prefix (bundle)": {"quality": {}, "speed": {"utterances": 3}}}}
    system = result["systems"]["valle_prefix (bundle)"]
    for name, path in (("onnxruntime", bundle), ("pytorch", model_dir)):
        s = speed(open_tts(path, num_threads=1), items, frames, batch_sizes=(1, 2))
        s["rtf_batch8"] = s["rtf_batch2"]
        # per item: encode, the prefill, one lm step per frame, one residual pass per codebook above 1
        assert abs(s["forward_passes_per_second"] * s["audio_seconds"] - sum(2 + f + 2 for f in frames)) < 1e-6
        system["speed"][name] = s
    system["speed"]["onnx_speedup"] = 1.0
    rows = cache_versus_recompute(open_tts(bundle, num_threads=1), lengths=(10, 40), repeats=1)
    assert [r["frames"] for r in rows] == [10, 40] and all(r["cached_ms"] > 0 for r in rows)
    system["cache"] = rows
    judged = {"wer_real": 10.0, "cer_real": 5.0, "wer_tts": 15.0, "cer_tts": 6.0, "wer_ratio": 1.5, "cer_ratio": 1.2}
    system["quality"]["seen voices"] = {
        "model": "m", "data": "d", "utterances": 3, "left_out": 0, "conditioning": "prefix", "rtf": 0.1,
        "judges": {"ctc": judged}, "robustness": {"too_long": 0.0, "too_short": 1 / 3, "empty": 0.0},
        "similarity": {"tts": 0.8, "real": 0.9, "ratio": 0.8 / 0.9}}
    table = markdown(result)
    assert "| 40 |" in table and "| valle_prefix (bundle) | onnxruntime |" in table
    assert "| valle_prefix (bundle) | seen voices | 1.50 | 1.20 | 0.889 | 0.0 / 33.3 / 0.0 |" in table

    # a masked system: passes follow the step setting; its trade-off curve is tabled and plotted
    import dataclasses
    model_dir, _ = tiny_model_dir(tmp_path, "prefix", kind="masked")
    masked = open_tts(export_tts(model_dir, tmp_path / "masked"), num_threads=1)
    s = speed(masked, items, frames, batch_sizes=(1,), options=dataclasses.replace(default_options(masked), steps=(2, 1, 1)))
    assert abs(s["forward_passes_per_second"] * s["audio_seconds"] - 3 * (1 + 2 + 1 + 1)) < 1e-6  # encode + passes
    s["rtf_batch8"] = s["rtf_batch1"]
    result["systems"]["masked_prefix (masked)"] = {
        "quality": {"seen voices": system["quality"]["seen voices"]}, "speed": {"utterances": 3, "onnxruntime": s},
        "step_curve": [{"setting": "2,1,1", "wer": 20.0, "cer": 9.0, "wer_real": 10.0, "rtf_batch1": 0.05,
                        "forward_passes_per_second": 40.0}]}
    assert "| 2,1,1 | 20.0 | 9.0 | 2.00 | 0.050 | 40.0 |" in markdown(result)
    # a pseudo-AR system streams: the first chunk comes before the last, the joins are seamless
    model_dir, _ = tiny_model_dir(tmp_path, "prefix", kind="par")
    stream = streaming(open_tts(export_tts(model_dir, tmp_path / "par"), num_threads=1), items[0], seconds=2.0)
    assert stream["chunks"] > 2 and stream["first_audio_s"] < stream["all_audio_s"]
    assert stream["max_abs_difference"] < 1e-5
    # tts_eval judges what it streams too: every item whole, at its length
    from narvox.recipes.tts_eval import synthesize
    par = open_tts(tmp_path / "par", num_threads=1)
    streamed, _ = synthesize(par, items, default_options(par), durations=frames, stream=True)
    whole, _ = synthesize(par, items, default_options(par), durations=frames)
    assert [len(a) for a in streamed] == [len(a) for a in whole] == [f * par.hop_length for f in frames]
    # PALLE's two models: the masked bundle refines for the pseudo-AR one, and its passes count too
    from narvox.tts.api import TTS
    two = TTS.from_pretrained(tmp_path / "par", num_threads=1, refiner=tmp_path / "masked").backend
    options = dataclasses.replace(default_options(two), steps=(1, 1), span=0.5, refine_steps=2)
    s = speed(two, items, frames, batch_sizes=(1,), options=options)
    assert abs(s["forward_passes_per_second"] * s["audio_seconds"] - 3 * (2 + 2 + 2 + 2)) < 1e-6  # encodes, spans, refinements, levels
    result["systems"]["par_prefix (par)"] = {**result["systems"]["masked_prefix (masked)"], "streaming": stream}
    assert "| par_prefix (par) | " in markdown(result).split("Streaming")[1]
    plot_tradeoff(result["systems"], tmp_path / "tradeoff.png")
    assert (tmp_path / "tradeoff.png").stat().st_size > 0
