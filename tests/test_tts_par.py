"""The pseudo-autoregressive backend (PALLE): its training masks, the loss falls, span-by-span
generation fills every frame in ceil(1/span) passes, refinement touches each code at most once
(batch independence: tests/test_tts_masked.py, beside the masked backend's)."""
import math

import numpy as np
import pytest
import torch

from narvox.tts import pseudo_ar
from narvox.tts.core import GenerateOptions
from narvox.tts.par import PseudoArTTS, prefix_masks
from narvox.tts.sampling import SamplingOptions
from tests.test_tts_core import tiny_config, toy_items
from tests.test_tts_masked import assert_loss_falls

def test_prefix_masks_give_a_known_prefix_and_score_the_span_after_it():
    torch.manual_seed(0)
    lengths = torch.tensor([100, 40, 5, 1])
    for _ in range(20):
        known, scored = prefix_masks(lengths, 100, 0.1)
        for i, n in enumerate(lengths.tolist()):
            start = int(known[i].sum())
            assert known[i, :start].all() and not known[i, start:].any()  # a prefix
            k = max(1, math.floor(0.1 * n))
            assert scored[i].sum() == k and scored[i, start:start + k].all()  # the k frames after it
            assert start + k <= n  # never past the item


def test_par_loss_falls():
    torch.manual_seed(0)
    assert_loss_falls(PseudoArTTS(tiny_config("aligned")))


class Recording:
    """A model's graphs, recording which codebook-1 frames each `levels` call had to predict."""

    def __init__(self, graphs):
        self.graphs, self.unknown = graphs, []
        self.conditioning, self.n_codebooks = graphs.conditioning, graphs.n_codebooks
        self.codebook_size, self.encode = graphs.codebook_size, graphs.encode

    def levels(self, *args):
        level, known = args[-2], args[-1]
        if level[0] == 0:
            self.unknown.append(~known)
        return self.graphs.levels(*args)


def test_spans_fill_left_to_right_and_refinement_touches_each_code_once():
    torch.manual_seed(0)
    model = PseudoArTTS(tiny_config("prefix")).eval()
    phones, _, prompts, prompt_phones = toy_items()
    graphs = Recording(model.graphs())
    options = GenerateOptions(sampling=SamplingOptions(temperature=0), durations=(20, 7, 13), span=0.25,
                              refine_steps=3)
    codes = pseudo_ar.generate(graphs, [p.numpy() for p in phones], [p.numpy() for p in prompts],
                               [p.numpy() for p in prompt_phones], options)
    assert [c.shape[1] for c in codes] == [20, 7, 13]
    spans, refinements = graphs.unknown[:4], graphs.unknown[4:]
    assert len(spans) == 4 and len(refinements) == 3  # ceil(1 / 0.25) passes, then 3 refinements
    for step, unknown in enumerate(spans):  # each pass: every frame after the fixed prefix
        for i, n in enumerate((20, 7, 13)):
            fixed = min(n, step * math.ceil(0.25 * n))
            assert not unknown[i, :fixed].any() and unknown[i, fixed:n].all() and not unknown[i, n:].any()
    refined = np.stack(refinements).sum(0)
    assert refined.max() == 1  # never twice
    assert refined[0].sum() == 3 * max(1, math.floor(pseudo_ar.REFINE_SHARE * 20))


def test_options_refuse_a_span_out_of_range():
    for span in (0, 1.5):
        with pytest.raises(ValueError, match="span"):
            GenerateOptions(span=span)
