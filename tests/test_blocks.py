"""Shared transformer blocks: cached steps equal the full forward, causal masks hide the future,
layers without cross-attention have none, adaptive LayerNorm starts as LayerNorm and learns, and
padding never reaches real positions."""
import pytest
import torch
from torch import nn

from narvox.models.attention import causal_mask
from narvox.models.norm import AdaptiveLayerNorm
from narvox.models.transformer import DecoderConfig, TransformerLayer, TransformerStack

CONFIG = DecoderConfig(d_model=16, n_heads=2, d_ff=32, n_layers=2, dropout=0.1)
COND_DIM = 6
B, T, S = 3, 7, 5


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, CONFIG.d_model, generator=g)
    memory = torch.randn(B, S, CONFIG.d_model, generator=g)
    memory_mask = torch.arange(S)[None, :] < torch.tensor([S, S - 2, 1])[:, None]
    return x, memory, memory_mask


def conditioned(stack):
    """Give every adaptive norm a non-zero projection, so that the conditioning matters."""
    for module in stack.modules():
        if isinstance(module, AdaptiveLayerNorm):
            nn.init.normal_(module.proj.weight, std=0.3)
            nn.init.normal_(module.proj.bias, std=0.3)
    return stack


@pytest.mark.parametrize("cross_attention", [False, True])
@pytest.mark.parametrize("cond_shape", [None, (B, COND_DIM), (B, T, COND_DIM)])
def test_cached_steps_equal_the_full_forward(cross_attention, cond_shape):
    torch.manual_seed(0)
    stack = conditioned(TransformerStack(CONFIG, cross_attention, None if cond_shape is None else COND_DIM)).eval()
    x, memory, memory_mask = inputs()
    cond = None if cond_shape is None else torch.randn(cond_shape)
    memory_args = dict(memory=memory, memory_mask=memory_mask[:, None, :]) if cross_attention else {}
    cross_kv = stack.cross_kv(memory) if cross_attention else None
    with torch.no_grad():
        full = stack(x, causal_mask(T)[None], cond=cond, **memory_args)
        # a prompt of 3 positions at once, then one position per step
        steps, cache = [], None
        for start, end in [(0, 3), *((t, t + 1) for t in range(3, T))]:
            step_cond = cond if cond is None or cond.dim() == 2 else cond[:, start:end]
            y, cache = stack.step(x[:, start:end], cache, cross_kv, memory_args.get("memory_mask"), step_cond)
            steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), full)
    assert cache[0].shape == (CONFIG.n_layers, B, CONFIG.n_heads, T, CONFIG.d_model // CONFIG.n_heads)


def test_layer_without_cross_attention_has_none_and_never_sees_the_future():
    torch.manual_seed(0)
    layer = TransformerLayer(CONFIG).eval()
    assert not any("cross" in name for name, _ in layer.named_parameters())
    assert any("cross" in name for name, _ in TransformerLayer(CONFIG, cross_attention=True).named_parameters())
    x, memory, _ = inputs()
    with pytest.raises(ValueError, match="cross-attention"):
        layer(x, memory=memory)
    with pytest.raises(ValueError, match="cross-attention"):  # no silent self-attention instead
        TransformerLayer(CONFIG, cross_attention=True)(x)
    with torch.no_grad():
        before, _ = layer(x, causal_mask(T)[None])
        for t in range(T - 1):
            changed = x.clone()
            changed[:, t + 1:] = torch.randn(B, T - t - 1, CONFIG.d_model) * 10
            after, _ = layer(changed, causal_mask(T)[None])
            torch.testing.assert_close(after[:, :t + 1], before[:, :t + 1])
            assert not torch.allclose(after[:, t + 1:], before[:, t + 1:])


@pytest.mark.parametrize("cond_shape", [(B, COND_DIM), (B, T, COND_DIM)])
def test_adaptive_layer_norm_starts_as_layer_norm_and_learns_the_conditioning(cond_shape):
    torch.manual_seed(0)
    norm = AdaptiveLayerNorm(CONFIG.d_model, COND_DIM)
    x, _, _ = inputs()
    cond, other = torch.randn(cond_shape), torch.randn(cond_shape)
    torch.testing.assert_close(norm(x, cond), nn.LayerNorm(CONFIG.d_model)(x))
    opt = torch.optim.SGD(norm.parameters(), lr=0.1)
    loss = (norm(x, cond) - torch.randn_like(x)).pow(2).mean()
    loss.backward()
    opt.step()
    assert not torch.allclose(norm(x, cond), norm(x, other))


def test_stack_refuses_conditioning_it_was_not_built_for():
    x, _, _ = inputs()
    with pytest.raises(ValueError, match="cond"):
        TransformerStack(CONFIG)(x, cond=torch.randn(B, COND_DIM))
    with pytest.raises(ValueError, match="cond"):
        TransformerStack(CONFIG, cond_dim=COND_DIM)(x)


def test_padding_never_reaches_real_positions():
    """A bidirectional stack with cross-attention: each row computes alike whatever fills its
    padding and the memory's, and alike alone without any padding."""
    torch.manual_seed(0)
    stack = conditioned(TransformerStack(CONFIG, cross_attention=True, cond_dim=COND_DIM)).eval()
    x, memory, memory_mask = inputs()
    lengths = torch.tensor([T, T - 3, 2])
    mask = torch.arange(T)[None, :] < lengths[:, None]
    cond = torch.randn(B, COND_DIM)
    run = lambda x, memory: stack(x, mask[:, None, :], memory, memory_mask[:, None, :], cond)
    with torch.no_grad():
        padded = run(x, memory)
        noisy = run(torch.where(mask[..., None], x, 100.0), torch.where(memory_mask[..., None], memory, -100.0))
        for b in range(B):
            n, s = int(lengths[b]), int(memory_mask[b].sum())
            torch.testing.assert_close(noisy[b, :n], padded[b, :n])
            alone = stack(x[b:b + 1, :n], None, memory[b:b + 1, :s], None, cond[b:b + 1])
            torch.testing.assert_close(alone[0], padded[b, :n])
