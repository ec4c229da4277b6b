"""The pseudo-autoregressive backend (PALLE): its training masks, the loss falls, span-by-span
generation fills every frame in ceil(1/span) passes, refinement touches each code at most once
(batch independence: tests/test_tts_masked.py, beside the masked backend's); streaming finishes
spans for good, each row as alone, and its audio joins into the whole decoding."""
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
    lengths = torch.tensor([100, 45, 5, 1])
    assert pseudo_ar.span_frames(np.array([100, 45, 5, 1]), 0.1).tolist() == [10, 5, 1, 1]  # ceil, as decoding
    assert pseudo_ar.span_frames(np.array([100]), 0.07).tolist() == [7]  # not 8 by float error
    for _ in range(20):
        known, scored, end = prefix_masks(lengths, 100, 0.1)
        for i, n in enumerate(lengths.tolist()):
            start = int(known[i].sum())
            assert known[i, :start].all() and not known[i, start:].any()  # a prefix
            k = max(1, math.ceil(0.1 * n))
            assert scored[i].sum() == k and scored[i, start:start + k].all()  # the k frames after it
            assert start + k <= n and end[i] == start + k  # never past the item
    ks = set()
    for _ in range(50):  # a share drawn per item between par_span and par_span_max
        known, scored, end = prefix_masks(lengths, 100, 0.1, 0.3)
        assert (scored.sum(1) >= torch.tensor([10, 5, 1, 1])).all() and (scored.sum(1) <= torch.tensor([30, 14, 2, 1])).all()
        assert torch.equal(end, known.sum(1) + scored.sum(1))
        ks.add(int(scored[0].sum()))
    assert len(ks) > 5


def test_par_loss_falls():
    torch.manual_seed(0)
    assert_loss_falls(PseudoArTTS(tiny_config("aligned")))
    assert_loss_falls(PseudoArTTS(tiny_config("aligned", par_span_max=0.3, par_lookahead=3)))


class Recording:
    """A model's graphs, recording which codebook-1 frames each `levels` call had to predict."""

    def __init__(self, graphs):
        self.graphs, self.unknown = graphs, []
        self.conditioning, self.n_codebooks = graphs.conditioning, graphs.n_codebooks
        self.codebook_size, self.encode = graphs.codebook_size, graphs.encode
        self.lookahead = graphs.lookahead

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


@pytest.mark.parametrize("conditioning", ["aligned", "prefix"])
def test_a_separate_refiner_refines_the_spans_on_the_same_frames(conditioning):
    """PALLE's two models: refinement passes go to the refiner (a masked model), conditioned on
    the pseudo-AR model's frames per phone; each row as alone."""
    from narvox.tts.masked import MaskedTTS
    torch.manual_seed(0)
    par, masked = PseudoArTTS(tiny_config(conditioning)).eval(), MaskedTTS(tiny_config(conditioning)).eval()
    phones, _, prompts, prompt_phones = [[x.numpy() for x in xs] for xs in toy_items()]
    graphs, refiner = Recording(par.graphs()), Recording(masked.graphs())
    options = GenerateOptions(sampling=SamplingOptions(temperature=0), span=0.25, refine_steps=3)
    codes = pseudo_ar.generate(graphs, phones, prompts, prompt_phones, options, refiner=refiner)
    assert len(graphs.unknown) == 4 and len(refiner.unknown) == 3  # spans by one model, refinement by the other
    joint = pseudo_ar.generate(par.graphs(), phones, prompts, prompt_phones, options)
    assert [c.shape for c in codes] == [c.shape for c in joint]  # the same lengths: the same alignment
    alone = pseudo_ar.generate(par.graphs(), phones[1:2], prompts[1:2], prompt_phones[1:2], options,
                               refiner=masked.graphs())
    assert np.array_equal(alone[0], codes[1])
    other = MaskedTTS(tiny_config("prefix" if conditioning == "aligned" else "aligned")).eval()
    with pytest.raises(ValueError, match="refiner"):
        pseudo_ar.generate(par.graphs(), phones, prompts, prompt_phones, options, refiner=other.graphs())


def test_a_lookahead_model_steps_on_a_window_and_each_row_as_alone():
    """par_lookahead: each span pass reads the frames made so far, the span and `lookahead`
    frames after it (a narrower batch), and no row depends on its batch-mates."""
    torch.manual_seed(0)
    model = PseudoArTTS(tiny_config("aligned", par_lookahead=3)).eval()
    phones, _, prompts, prompt_phones = [[x.numpy() for x in xs] for xs in toy_items()]
    options = GenerateOptions(sampling=SamplingOptions(temperature=1.0, top_k=5), seed=4, durations=None, span=0.25,
                              refine_steps=2)
    graphs = Recording(model.graphs())
    codes = pseudo_ar.generate(graphs, phones, prompts, prompt_phones, options)
    lengths = np.array([c.shape[1] for c in codes])
    span = pseudo_ar.span_frames(lengths, 0.25)
    passes = graphs.unknown[:4]
    for step, unknown in enumerate(passes):
        made = np.minimum(step * span, lengths)
        ends = np.where(made >= lengths, 1, np.minimum(lengths, made + span + 3))
        assert unknown.shape[1] == ends.max()
        for i in range(3):  # the window: unfinished frames up to its end, none past it
            assert unknown[i, made[i]:ends[i]].all() and not unknown[i, :made[i]].any()
            assert not unknown[i, max(ends[i], made[i]):].any()
    assert passes[0].shape[1] < lengths.max()
    assert all(u.shape[1] == lengths.max() for u in graphs.unknown[4:])  # refinement reads the whole target
    for i in range(3):
        alone = pseudo_ar.generate(model.graphs(), phones[i:i + 1], prompts[i:i + 1], prompt_phones[i:i + 1], options)
        assert np.array_equal(alone[0], codes[i])
    whole = pseudo_ar.generate(model.graphs(), phones, prompts, prompt_phones,
                               GenerateOptions(sampling=options.sampling, seed=4, span=0.25, refine_steps=2,
                                               lookahead=10 ** 6))
    assert [c.shape for c in whole] == [c.shape for c in codes]


def test_options_refuse_a_span_out_of_range():
    for span in (0, 1.5):
        with pytest.raises(ValueError, match="span"):
            GenerateOptions(span=span)


def test_stream_finishes_spans_for_good_and_each_row_as_alone():
    torch.manual_seed(0)
    model = PseudoArTTS(tiny_config("prefix")).eval()
    phones, _, prompts, prompt_phones = (list(map(lambda t: t.numpy(), x)) for x in toy_items())
    options = GenerateOptions(sampling=SamplingOptions(temperature=1.0, top_k=5), seed=2, durations=(20, 7, 13),
                              span=0.25)
    graphs = model.graphs()
    seen, finals = [], []
    for codes, final in pseudo_ar.stream(graphs, phones, prompts, prompt_phones, options):
        seen.append(codes.copy())
        finals.append(final.copy())
    assert [f.tolist() for f in finals] == [[5, 2, 4], [10, 4, 8], [15, 6, 12], [20, 7, 13]]
    for k, final in enumerate(finals):  # what a step made final never changes afterwards
        for i, n in enumerate(final):
            assert np.array_equal(seen[k][i, :, :n], seen[-1][i, :, :n])
    for i in range(3):
        alone = list(pseudo_ar.stream(graphs, [phones[i]], [prompts[i]], [prompt_phones[i]],
                                      GenerateOptions(sampling=options.sampling, seed=2, durations=(options.durations[i],),
                                                      span=0.25)))
        *_, (codes, final) = alone
        assert np.array_equal(codes[0, :, :final[0]], seen[-1][i, :, :final[0]])


def test_streaming_decoder_joins_chunks_into_the_whole_decoding():
    from narvox.runtime.codec import OnnxCodec, StreamingDecoder
    codec = OnnxCodec("narvox", num_threads=1)
    codes = np.random.default_rng(0).integers(0, 1024, (4, 130))
    decoder = StreamingDecoder(codec)
    chunks = [decoder.push(codes[:, :n]) for n in (13, 26, 60, 61, 100)] + [decoder.push(codes, final=True)]
    assert len(chunks[0]) == 0  # 13 frames: none has its right context yet
    whole = codec.decode(codes[None])[0]
    joined = np.concatenate(chunks)
    assert len(joined) == len(whole) and np.abs(joined - whole).max() < 1e-5
