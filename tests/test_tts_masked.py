"""The masked backend: masks, the loss falls, mask-predict fills every frame, batch independence
(greedy and seeded sampling with guidance; the pseudo-AR backend's too), the length rule and
imposed durations."""
import numpy as np
import pytest
import torch

from narvox.tts.core import GenerateOptions
from narvox.tts.mask_predict import steps_per_level, target_frames
from narvox.tts.masked import MaskedTTS, draw_masks
from narvox.tts.par import PseudoArTTS
from narvox.tts.sampling import SamplingOptions
from tests.test_tts_core import tiny_config, toy_batch, toy_items

GREEDY = GenerateOptions(sampling=SamplingOptions(temperature=0), steps=(4, 2))


def test_draw_masks_respects_lengths_ratio_and_spans():
    torch.manual_seed(0)
    lengths = torch.tensor([200, 50, 1])
    for span in (1, 3):
        masked = draw_masks(lengths, 200, torch.tensor([0.5, 0.9, 0.01]), span)
        assert not masked[1, 50:].any() and masked[2].sum() == 1  # padding never; at least one frame
        assert abs(masked[0].float().mean() - 0.5) < 0.15 and masked[1, :50].float().mean() > 0.7
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, masked[0].int().numpy(), 0])))[::2]
    assert runs.min() >= 3  # spans of 3 (merged where they touch)


def test_schedule_and_length_rule():
    assert steps_per_level(4, None) == [8, 2, 1, 1] and steps_per_level(2, (3, 2, 1)) == [3, 2]
    with pytest.raises(ValueError):
        steps_per_level(2, (0,))
    # the prompt speaks 4 phones in 20 frames: 6 phones take 30
    assert target_frames(np.array([20]), [np.arange(4)], [np.arange(6)]).tolist() == [30]
    with pytest.raises(ValueError, match="prompt's text"):
        target_frames(np.array([20]), [np.zeros(0)], [np.arange(6)])


def assert_loss_falls(model, key: str = "ce_levels") -> dict:
    """Masks and levels are drawn anew every step, so the loss is judged on the same draws
    (seeded) before and after 40 steps on a toy batch. Returns the last step's losses."""
    torch.manual_seed(0)
    batch = toy_batch()

    def held_out_loss():
        model.eval()
        with torch.no_grad():
            values = []
            for seed in range(5):
                torch.manual_seed(100 + seed)
                values.append(model.loss(batch)[key].item())
        model.train()
        return np.mean(values)

    before = held_out_loss()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for step in range(40):
        torch.manual_seed(step)
        out = model.loss(batch)
        loss = sum(v for k, v in out.items() if not k.startswith("acc"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held_out_loss() < 0.8 * before
    return out


@pytest.mark.parametrize("conditioning", ["aligned", "prefix"])
def test_masked_loss_falls(conditioning):
    torch.manual_seed(0)
    out = assert_loss_falls(MaskedTTS(tiny_config(conditioning, mask_span=3)))
    assert {"ce_levels", "acc_levels"} <= set(out)


@pytest.mark.parametrize("backend", [MaskedTTS, PseudoArTTS])  # the same graphs, filled in another order
@pytest.mark.parametrize("conditioning", ["aligned", "prefix"])
def test_masked_and_par_generate_the_same_codes_in_a_batch_as_alone(conditioning, backend):
    torch.manual_seed(0)
    model = backend(tiny_config(conditioning)).eval()
    torch.nn.init.constant_(model.text_to_frames.durations.out.bias, 1.5) if conditioning == "aligned" else None
    phones, _, prompts, prompt_phones = toy_items()
    sampled = GenerateOptions(sampling=SamplingOptions(temperature=1.0, top_k=5, cfg_scale=2.0), seed=3, steps=(3, 2),
                              span=0.2, refine_steps=2)
    for options in (GREEDY, sampled):
        together = model.generate(phones, prompts, prompt_phones, options)
        for i in range(len(phones)):
            alone = model.generate([phones[i]], [prompts[i]], [prompt_phones[i]], options)[0]
            assert torch.equal(together[i], alone)
        assert all(c.shape[0] == 3 and c.shape[1] >= 1 and c.max() < 16 for c in together)
    if conditioning == "prefix":  # the length rule: prompt frames x target phones / prompt phones
        expected = [round(len(pr[0]) * len(p) / len(pp)) for p, pr, pp in zip(phones, prompts, prompt_phones)]
        assert [c.shape[1] for c in together] == expected
    timed = model.generate(phones, prompts, prompt_phones, GenerateOptions(durations=(12, 30, 9), seed=0))
    assert [c.shape[1] for c in timed] == [12, 30, 9]
