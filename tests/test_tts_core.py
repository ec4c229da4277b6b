"""The TTS core: alignment, length regulation, sampling, layouts, and the VALL-E backend
(loss falls, batch independence, cached decoding equals the full forward)."""
import numpy as np
import pytest
import torch

from narvox.models.attention import padding_mask
from narvox.tts.aligner import (Aligner, beta_binomial_log_prior, forward_sum_loss, frame_to_phone,
                                monotonic_alignment, regulate)
from narvox.tts.ar import ValleTTS
from narvox.tts import decoding
from narvox.tts.decoding import fit_durations
from narvox.tts.core import GenerateOptions, Layout, TtsConfig, join_text, pad_1d, pad_codes
from narvox.tts.sampling import SamplingOptions, filter_logits, row_generators, sample

GREEDY = GenerateOptions(sampling=SamplingOptions(temperature=0), max_frames_per_phone=4)


def tiny_config(conditioning: str, **kw) -> TtsConfig:
    return TtsConfig(conditioning=conditioning, n_phones=20, codebook_size=16, n_codebooks=3, d_model=32,
                     n_heads=2, d_ff=64, phone_layers=1, layers=2, residual_layers=1, align_dim=16,
                     dropout=0.0, **kw)


def toy_items(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    phones = [torch.randint(4, 20, (n,), generator=g) for n in (5, 7, 4)]
    codes = [torch.randint(0, 16, (4, n), generator=g) for n in (20, 25, 14)]
    prompts = [torch.randint(0, 16, (4, n), generator=g) for n in (6, 9, 5)]
    prompt_phones = [torch.randint(4, 20, (n,), generator=g) for n in (3, 2, 4)]
    return phones, codes, prompts, prompt_phones


def toy_batch(seed: int = 0) -> dict:
    phones, codes, prompts, prompt_phones = toy_items(seed)
    (ph, pl), (cd, cl), (pr, prl), (pp, ppl) = pad_1d(phones), pad_codes(codes), pad_codes(prompts), pad_1d(prompt_phones)
    return dict(phones=ph, phone_lens=pl, codes=cd, code_lens=cl, prompt=pr, prompt_lens=prl,
                prompt_phones=pp, prompt_phone_lens=ppl)


def test_beta_binomial_prior_is_a_distribution_over_real_phones():
    prior = beta_binomial_log_prior(torch.tensor([4, 2]), torch.tensor([10, 6]), 4, 10)
    assert torch.allclose(prior[0].exp().sum(1), torch.ones(10), atol=1e-4)
    assert torch.allclose(prior[1, :6].exp().sum(1), torch.ones(6), atol=1e-4)
    assert prior[0, 0].argmax() == 0 and prior[0, 9].argmax() == 3  # along the diagonal


def test_monotonic_alignment_follows_the_best_path_and_covers_every_frame():
    # 6 frames, 3 phones: frames 0-1 phone 0, 2-4 phone 1, 5 phone 2
    target = torch.tensor([0, 0, 1, 1, 1, 2])
    log_probs = torch.full((1, 6, 3), -5.0)
    log_probs[0, torch.arange(6), target] = 0.0
    durations = monotonic_alignment(log_probs, torch.tensor([3]), torch.tensor([6]))
    assert durations.tolist() == [[2, 3, 1]]
    assert frame_to_phone(durations, 6).tolist() == [target.tolist()]


def test_monotonic_alignment_of_a_padded_batch_equals_each_item_alone():
    g = torch.Generator().manual_seed(1)
    lp = torch.randn(2, 9, 4, generator=g)
    phone_lens, frame_lens = torch.tensor([4, 2]), torch.tensor([9, 5])
    both = monotonic_alignment(lp, phone_lens, frame_lens)
    second = monotonic_alignment(lp[1:, :5, :2], phone_lens[1:], frame_lens[1:])
    assert both[:, :].sum(1).tolist() == [9, 5]
    assert both[1, :2].tolist() == second[0].tolist() and both[1, 2:].sum() == 0
    assert (both[0] >= 1).all()  # every phone gets a frame
    with pytest.raises(ValueError, match="as many frames as phones"):
        monotonic_alignment(lp[:, :3], phone_lens, torch.tensor([3, 3]))


def test_regulate_repeats_phone_states_by_durations():
    states = torch.arange(6.0).view(1, 3, 2)
    out = regulate(states, torch.tensor([[1, 0, 2]]), 4)
    assert out[0, :3].tolist() == [[0, 1], [4, 5], [4, 5]]


def test_aligner_forward_sum_learns_a_toy_alignment():
    """Frames carry a one-hot of their phone: after training, the hard alignment puts most frames
    on their own phone (the prior alone, at the start, does not)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    phones, frames, durations = [], [], []
    for _ in range(32):
        p = torch.randperm(6, generator=g)[:5] + 4
        d = torch.randint(1, 5, (5,), generator=g)
        phones.append(p), durations.append(d), frames.append(torch.repeat_interleave(p, d))
    (ph, lens), (fr, flens) = pad_1d(phones), pad_1d(frames)
    one_hot = torch.nn.functional.one_hot(fr, 10).float()
    truth = frame_to_phone(torch.stack(durations), fr.size(1))
    real = padding_mask(flens, fr.size(1))

    def frame_accuracy(log_align):
        found = frame_to_phone(monotonic_alignment(log_align.detach(), lens, flens), fr.size(1))
        return ((found == truth) & real).sum().item() / real.sum().item()

    aligner = Aligner(n_phones=10, frame_dim=10, dim=16)
    opt = torch.optim.Adam(aligner.parameters(), 1e-2)
    losses = []
    for _ in range(60):
        log_align = aligner(ph, lens, one_hot, flens)
        losses.append(forward_sum_loss(log_align, lens, flens))
        if len(losses) == 1:
            before = frame_accuracy(log_align)
        opt.zero_grad()
        losses[-1].backward()
        opt.step()
    assert losses[-1].item() < 0.5 * losses[0].item()
    assert frame_accuracy(aligner(ph, lens, one_hot, flens)) >= max(0.8, before + 0.1)


def test_fit_durations_keeps_proportions_and_hits_the_total():
    d = np.array([[1, 3, 5, 0], [2, 2, 0, 0]])
    lens = np.array([3, 2])
    out = fit_durations(d, np.array([18, 2]), lens)
    assert out.sum(1).tolist() == [18, 2] and (out[0, :3] >= 1).all() and out[0, 3] == 0
    assert out[0, 2] > out[0, 1] > out[0, 0]
    with pytest.raises(ValueError, match="shorter than the text"):
        fit_durations(d, np.array([2, 2]), lens)


def test_join_text_puts_the_prompt_text_first():
    out, lens = join_text(torch.tensor([[7, 8], [9, 0]]), torch.tensor([2, 1]),
                          torch.tensor([[4, 5, 6], [3, 0, 0]]), torch.tensor([3, 1]))
    assert lens.tolist() == [5, 2]
    assert out.tolist() == [[7, 8, 4, 5, 6], [9, 3, 0, 0, 0]]


def test_layout_masks_padding_and_counts_audio_positions_per_item():
    layout = Layout(torch.tensor([2, 1]), torch.tensor([1, 2]), torch.tensor([2, 2]), 2, 2, 2)
    assert layout.audio_positions().tolist() == [[0, 1, 1, 2], [0, 1, 2, 3]]
    mask = layout.mask()
    # item 0: text slots 0-1, prompt slot 2 (slot 3 padding), target slots 4-5
    assert mask[0, 0].tolist() == [True, True, False, False, False, False]  # text sees text only
    assert mask[0, 4].tolist() == [True, True, True, False, True, True]     # audio sees all real slots
    hidden = layout.mask(text_visible=torch.tensor([False, True]))
    assert hidden[0, 4].tolist() == [False, False, True, False, True, True]
    assert mask[0, 3].tolist() == [True, True, True, True, True, True]  # a padded slot also sees itself


def test_sampling_filters_and_rows_are_independent():
    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    assert np.isinf(filter_logits(logits, top_k=2)[0, 2:]).all()
    kept = ~np.isinf(filter_logits(logits, top_p=0.7)[0])
    assert kept.tolist() == [True, True, False, False]
    opts = SamplingOptions(temperature=1.0, repetition_ratio=0)
    rows = np.repeat(logits, 3, axis=0)
    together = sample(rows, opts, row_generators(5, 3))
    alone = sample(rows[:1], opts, row_generators(5, 1))
    assert (together == alone[0]).all()
    assert sample(logits, SamplingOptions(temperature=0), row_generators(0, 1)).tolist() == [0]


def test_repetition_aware_sampling_redraws_a_looping_token():
    logits = np.log(np.array([[0.999, 0.001 / 3, 0.001 / 3, 0.001 / 3]]))
    opts = SamplingOptions(temperature=1.0, top_k=1 + 0, repetition_window=4, repetition_ratio=0.25)
    # top_k=1 is greedy: repetition handling applies to sampling only
    assert sample(logits, opts, row_generators(0, 1), np.zeros((1, 4), dtype=np.int64)).tolist() == [0]
    flat = np.zeros((1, 4))
    opts = SamplingOptions(temperature=1.0, top_p=0.5, repetition_window=4, repetition_ratio=0.25)
    drawn = {int(sample(flat, opts, row_generators(s, 1), np.zeros((1, 4), dtype=np.int64))[0]) for s in range(20)}
    assert len(drawn) > 1  # top-p alone would always give token 0; the loop sends it to the full distribution


@pytest.mark.parametrize("conditioning, token_drop", [("aligned", 0.0), ("prefix", 0.0), ("aligned", 0.5)])
def test_valle_loss_falls(conditioning, token_drop):
    torch.manual_seed(0)
    model = ValleTTS(tiny_config(conditioning, token_drop=token_drop))
    batch = toy_batch()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    losses = []
    for _ in range(15):
        out = model.loss(batch)
        loss = sum(v for k, v in out.items() if not k.startswith("acc"))
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]
    expected = {"ce_first", "acc_first", "ce_rest", "acc_rest"}
    if conditioning == "aligned":
        expected |= {"forward_sum", "binarize", "duration"}
    assert set(out) == expected


def test_token_drop_masks_teacher_forced_inputs_in_training_only():
    torch.manual_seed(0)
    model = ValleTTS(tiny_config("prefix", token_drop=1.0))
    batch = toy_batch()
    model.eval()

    def loss():
        torch.manual_seed(1)  # the same items without text (cond_drop) every time
        return model.loss(batch)["ce_first"]
    with torch.no_grad():
        clean = loss()
        model.first.train()  # every input code but the start token masked: a different loss
        masked = loss()
        model.first.eval()
        assert torch.equal(loss(), clean)  # evaluation never drops
    assert not torch.isclose(clean, masked)


@pytest.mark.parametrize("conditioning", ["aligned", "prefix"])
def test_valle_generates_the_same_codes_in_a_batch_as_alone(conditioning):
    torch.manual_seed(0)
    model = ValleTTS(tiny_config(conditioning)).eval()
    phones, _, prompts, prompt_phones = toy_items()
    sampled = GenerateOptions(sampling=SamplingOptions(temperature=1.0, top_k=5, cfg_scale=1.5), seed=3,
                              max_frames_per_phone=4)
    for options in (GREEDY, sampled):
        together = model.generate(phones, prompts, prompt_phones, options)
        for i in range(len(phones)):
            alone = model.generate([phones[i]], [prompts[i]], [prompt_phones[i]], options)[0]
            assert torch.equal(together[i], alone)
        assert all(c.shape[0] == 3 and c.max() < 16 for c in together)


def test_valle_duration_option_sets_the_length():
    model = ValleTTS(tiny_config("aligned")).eval()
    phones, _, prompts, _ = toy_items()
    out = model.generate(phones, prompts, options=GenerateOptions(sampling=SamplingOptions(temperature=0),
                                                                   durations=(12, 30, 4)))
    assert [c.shape[1] for c in out] == [12, 30, 4]
    prefix = ValleTTS(tiny_config("prefix")).eval()
    out = prefix.generate(phones, prompts, toy_items()[3], GenerateOptions(durations=(7, 9, 3), seed=0))
    assert [c.shape[1] for c in out] == [7, 9, 3]


def test_cached_decoding_equals_the_full_forward():
    """The codebook-1 stage run as generation runs it (the [text | prompt] prefill laid out by
    narvox.tts.decoding, then one KV-cached step per target slot) gives the logits of one uncached
    teacher-forced pass over the same sequence laid out as training does."""
    torch.manual_seed(0)
    model = ValleTTS(tiny_config("prefix")).eval()
    first = model.first
    batch = toy_batch()
    text, text_lens = join_text(batch["prompt_phones"], batch["prompt_phone_lens"], batch["phones"], batch["phone_lens"])
    states = first.phones(text, text_lens)
    prompt, prompt_lens = batch["prompt"][:, 0], batch["prompt_lens"]
    visible = torch.tensor([True, False, True])  # the second item as CFG's unconditional row
    n_target = 10
    layout = Layout(text_lens, prompt_lens, torch.full((3,), n_target), text.size(1), prompt.size(1), n_target)
    n0, size = layout.n_text + layout.n_prompt, layout.size
    is_text, is_prompt, positions, key_valid = layout.first_stage_slots(visible)
    inputs = torch.cat([torch.full((3, 1), model.config.bos), batch["codes"][:, 0, :n_target - 1]], dim=1)
    tokens = torch.cat([torch.zeros(3, layout.n_text, dtype=torch.long), prompt, inputs], dim=1)
    text_in = torch.nn.functional.pad(states, (0, 0, 0, size - layout.n_text))
    zeros = torch.zeros(3, size, model.config.d_model)
    with torch.no_grad():
        full, _, _ = first.run(tokens, text_in, zeros, is_text, is_prompt, positions, key_valid, is_text)
        np_text, np_positions, np_valid = decoding.prefill_slots(text_lens.numpy(), prompt_lens.numpy(),
                                                                 layout.n_text, layout.n_prompt, visible.numpy())
        assert (np_text == is_text[:, :n0].numpy()).all() and (np_valid == key_valid[:, :n0].numpy()).all()
        assert (np_positions == positions[:, :n0].numpy()).all()
        _, keys, values = first.run(tokens[:, :n0], text_in[:, :n0], zeros[:, :n0], is_text[:, :n0],
                                    is_prompt[:, :n0], positions[:, :n0], key_valid[:, :n0], is_text[:, :n0])
        steps = []
        for t in range(n0, size):
            s = slice(t, t + 1)
            logits, keys, values = first.run(tokens[:, s], text_in[:, s], zeros[:, s], is_text[:, s], is_prompt[:, s],
                                             positions[:, s], key_valid[:, :t + 1], is_text[:, :t + 1], keys, values)
            steps.append(logits[:, 0])
    assert torch.allclose(torch.stack(steps, 1), full[:, n0:], atol=1e-5)
