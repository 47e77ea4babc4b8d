"""L2P prompt pool: key matching, key-pull loss and the pool-wrapped ViT ReID model (models/prompt_pool.py)."""
import pytest
import torch
import torch.nn.functional as F

from ckda_avalanche.losses.l2p import key_pull_loss
from ckda_avalanche.models import ReIDOutput, create_model
from ckda_avalanche.models.prompt_pool import PromptPool, PromptPoolConfig, PromptPoolReIDModel


def test_select_returns_nearest_keys_and_pull_loss_trains_keys_only():
    pool = PromptPool(embed_dim=4, config=PromptPoolConfig(pool_size=4, prompt_length=2, top_n=2))
    with torch.no_grad():
        pool.keys.copy_(torch.eye(4))
    query = torch.tensor([[1.0, 0.2, 0.0, 0.0], [0.0, 0.0, 0.1, 1.0]], requires_grad=True)
    idx = pool.select(query)
    pull = key_pull_loss(query, pool.keys, idx)
    assert idx.tolist() == [[0, 1], [3, 2]]
    cos = F.normalize(query.detach(), dim=1)
    expected = ((1 - cos[0, 0]) + (1 - cos[0, 1]) + (1 - cos[1, 3]) + (1 - cos[1, 2])) / 2
    assert torch.allclose(pull, expected)
    pull.backward()
    assert query.grad is None and pool.keys.grad.abs().sum() > 0
    tokens = pool.tokens(idx)
    assert tokens.shape == (2, 4, 4)
    assert torch.equal(tokens[0, :2], pool.prompts[0]) and torch.equal(tokens[1, 2:], pool.prompts[2])


def test_config_validation():
    with pytest.raises(ValueError, match="top_n"):
        PromptPoolConfig(pool_size=3, top_n=4)
    with pytest.raises(ValueError, match="prompt_length"):
        PromptPoolConfig(prompt_length=0)


def test_wrapped_model_contract_and_prompt_gradients():
    torch.manual_seed(0)
    base = create_model("test", num_classes=3)
    model = PromptPoolReIDModel(base=base, config=PromptPoolConfig(pool_size=4, prompt_length=2, top_n=2))
    h, w = base.config.img_size
    x, mod = torch.randn(4, 3, h, w), torch.tensor([0, 0, 1, 1])
    model.train()
    out = model(x, mod)
    assert isinstance(out, ReIDOutput) and out.logits.shape == (4, 3)
    selection = model.pop_selection()
    assert selection is not None and model.pop_selection() is None
    query, idx = selection
    assert query.shape == (4, base.embed_dim) and idx.shape == (4, 2) and not query.requires_grad
    pull = key_pull_loss(query, model.pool.keys, idx)
    # (a plain sum of a LayerNorm output has no gradient; use a random projection)
    (out.feat * torch.randn_like(out.feat)).sum().add(pull).backward()
    assert model.pool.prompts.grad.abs().sum() > 0 and model.pool.keys.grad.abs().sum() > 0
    # the prompts change the feature: the wrapped forward differs from the plain one
    model.eval()
    feat = model(x, mod)
    assert feat.shape == (4, base.embed_dim) and torch.allclose(feat.norm(dim=1), torch.ones(4), atol=1e-5)
    assert not torch.allclose(feat, base(x, mod), atol=1e-4)
    assert model.last_selection is None
    groups = model.parameter_groups()
    assert any(p is model.pool.keys for p in groups["other"])
