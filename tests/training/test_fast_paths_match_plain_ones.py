"""The faster training and evaluation paths compute what the plain ones do: the written-out
encoder, the cheaper dropout, and evaluation in length order."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nextloc.models import build_model
from nextloc.core.device import keep_freed_memory
from nextloc.models.layers import cheap_dropout, keep_masks, pre_norm_encoder, run_encoder
from nextloc.training.optimizer import FlatAdamW
from nextloc.training.loop import evaluate


@pytest.mark.parametrize("width", [7, 20])  # keys padded to 16 (see attention_keys), and not
def test_the_written_out_encoder_is_torchs_encoder_in_values_and_gradients(width):
    torch.manual_seed(0)
    encoder = pre_norm_encoder(16, 2, 4, 32, dropout=0.0).train()
    steps = torch.randn(5, width, 16, requires_grad=True)
    lengths = torch.tensor([width, 3, 1, 5, 6])
    padding = torch.arange(width)[None, :] >= lengths[:, None]
    real = ~padding[..., None]
    expected = encoder(steps, src_key_padding_mask=padding)
    (expected * real).sum().backward()
    expected_grads = [steps.grad.clone()] + [p.grad.clone() for p in encoder.parameters()]
    steps.grad = None
    encoder.zero_grad()
    written_out = run_encoder(encoder, steps, padding)
    (written_out * real).sum().backward()
    grads = [steps.grad] + [p.grad for p in encoder.parameters()]
    torch.testing.assert_close(written_out * real, expected * real, atol=1e-5, rtol=1e-5)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=1e-5)


def test_cheap_dropout_keeps_one_minus_p_scaled_and_is_the_identity_in_eval():
    torch.manual_seed(0)
    values = torch.ones(200_000)
    dropped = cheap_dropout(values, 0.3, training=True)
    assert (dropped == 0).float().mean().item() == pytest.approx(0.3, abs=0.005)
    assert dropped.unique().tolist() == pytest.approx([0.0, 1 / 0.7])
    assert dropped.mean().item() == pytest.approx(1.0, abs=0.01)
    assert cheap_dropout(values, 0.3, training=False) is values


def test_keep_masks_drop_p_rounded_to_16_bits_and_keep_the_expected_value():
    torch.manual_seed(0)
    like = torch.zeros(1)
    masks = keep_masks([(300, 1000), (7,), (2, 3, 5)], 0.1, like)
    assert [tuple(mask.shape) for mask in masks] == [(300, 1000), (7,), (2, 3, 5)]
    dropped = 6554 / 65536  # 0.1 rounded to a multiple of 1/65536
    values = torch.cat([mask.reshape(-1) for mask in masks])
    assert values.unique().tolist() == pytest.approx([0.0, 1 / (1 - dropped)])
    assert (values == 0).float().mean().item() == pytest.approx(dropped, abs=0.002)
    assert values.mean().item() == pytest.approx(1.0, abs=0.003)
    # The four 16-bit lanes of each random word are independent: neighbours do not correlate.
    kept = (masks[0].reshape(-1) > 0).float()
    assert torch.corrcoef(torch.stack([kept[:-1], kept[1:]]))[0, 1].abs().item() < 0.01
    assert (keep_masks([(50,)], 0.0, like)[0] == 1).all()


def test_the_written_out_encoder_draws_its_dropout_from_the_seed():
    encoder = pre_norm_encoder(16, 2, 4, 32, dropout=0.3).train()
    steps, padding = torch.randn(3, 5, 16), torch.zeros(3, 5, dtype=torch.bool)
    outputs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        outputs.append(run_encoder(encoder, steps, padding))
    assert torch.equal(outputs[0], outputs[1]) and not torch.equal(outputs[0], outputs[2])


def test_the_written_out_encoder_applies_each_dropout_mask_where_torchs_layer_drops():
    torch.manual_seed(0)
    encoder = pre_norm_encoder(16, 2, 4, 32, dropout=0.3).train()
    steps = torch.randn(3, 5, 16)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] + [True] * 4])
    torch.manual_seed(7)
    written_out = run_encoder(encoder, steps, padding)
    torch.manual_seed(7)  # the same draw: weights, attention output, hidden, output per layer
    # The attention weights' mask covers 16 keys (attention_keys); the 11 padded keys have
    # weight 0, so their part of the mask changes nothing.
    shapes = [(3, 4, 5, 16), (3, 5, 16), (3, 5, 32), (3, 5, 16)]
    masks = keep_masks(shapes * 2, 0.3, steps)
    expected = steps
    for number, layer in enumerate(encoder.layers):
        weights_mask, attended_mask, hidden_mask, out_mask = masks[4 * number:4 * number + 4]
        q, k, v = (torch.nn.functional.linear(layer.norm1(expected), layer.self_attn.in_proj_weight,
                                              layer.self_attn.in_proj_bias)
                   .view(3, 5, 3, 4, 4).permute(2, 0, 3, 1, 4))
        scores = (q @ k.transpose(-1, -2) / 2.0).masked_fill(padding[:, None, None, :],
                                                              float("-inf"))
        weights = scores.softmax(-1) * weights_mask[..., :5]
        mixed = (weights @ v).transpose(1, 2).reshape(3, 5, 16)
        expected = expected + layer.self_attn.out_proj(mixed) * attended_mask
        hidden = torch.relu(layer.linear1(layer.norm2(expected))) * hidden_mask
        expected = expected + layer.linear2(hidden) * out_mask
    torch.testing.assert_close(written_out, expected, atol=1e-5, rtol=1e-5)


def test_the_flat_optimizer_steps_like_adamw_with_clipping_over_the_separate_tensors():
    torch.manual_seed(0)
    encoder = pre_norm_encoder(16, 1, 4, 32, dropout=0.0).train()
    twin = pre_norm_encoder(16, 1, 4, 32, dropout=0.0).train()
    twin.load_state_dict(encoder.state_dict())
    steps = torch.randn(4, 6, 16)
    separate = list(encoder.parameters())
    reference = torch.optim.AdamW(separate, lr=0.01, weight_decay=0.1, fused=True)
    flat = FlatAdamW(list(twin.parameters()), lr=0.01, weight_decay=0.1, fused=True)
    for _ in range(3):
        reference.zero_grad(set_to_none=True)
        (encoder(steps) ** 2).sum().backward()
        assert torch.nn.utils.clip_grad_norm_(separate, 0.5) > 0.5  # the clipping acts
        reference.step()
        flat.zero_grad()
        (twin(steps) ** 2).sum().backward()
        flat.clip_grad_norm(0.5)
        flat.step()
    for name, value in encoder.state_dict().items():
        torch.testing.assert_close(twin.state_dict()[name], value, atol=1e-6, rtol=1e-6)
    buffer = flat.flat.untyped_storage().data_ptr()
    assert all(p.untyped_storage().data_ptr() == buffer for p in twin.parameters())


def test_the_weight_average_is_the_exponential_moving_average_of_the_steps():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    flat = FlatAdamW(list(layer.parameters()), lr=0.1, weight_decay=0.0, fused=True,
                     average=0.5)
    expected = flat.flat.detach().clone()
    for _ in range(3):
        flat.zero_grad()
        layer(torch.randn(4, 3)).pow(2).sum().backward()
        flat.step()
        expected = 0.5 * expected + 0.5 * flat.flat.detach()
    last = flat.flat.detach().clone()
    with flat.averaged_weights():
        torch.testing.assert_close(torch.cat([layer.weight.reshape(-1), layer.bias]), expected)
    assert torch.equal(flat.flat.detach(), last)  # the last weights come back after the block
    flat.keep_average()
    torch.testing.assert_close(torch.cat([layer.weight.reshape(-1), layer.bias]), expected)


def test_keeping_freed_memory_is_a_no_op_without_glibc(monkeypatch):
    def no_libc(name):
        raise OSError(f"{name}: not found")
    monkeypatch.setattr("ctypes.CDLL", no_libc)
    keep_freed_memory()  # returns without raising


def test_evaluation_in_length_order_gives_the_predictions_in_split_order(tiny_data):
    torch.manual_seed(0)
    model = build_model("pointer", tiny_data.num_locations, tiny_data.num_users, dim=16)
    model.fit_statistics(tiny_data.splits["train"])
    split = tiny_data.splits["validation"]
    assert not np.all(np.diff(split.lengths) >= 0)  # the split is not already sorted
    device = torch.device("cpu")
    sorted_metrics, sorted_predictions = evaluate(model, split, device, return_predictions=True)
    plain_metrics, plain_predictions = evaluate(model, split, device, max_batches=10**9,
                                                return_predictions=True)  # the split's order
    assert sorted_predictions.equals(plain_predictions)
    assert sorted_metrics == pytest.approx(plain_metrics)


@pytest.mark.parametrize("refit", [False, True])
def test_training_with_a_weight_average_tests_the_average(tiny_data, refit):
    from nextloc.training.loop import train
    from nextloc.training.settings import TrainConfig

    def run(average):
        config = TrainConfig(model="pointer", epochs=2, device="cpu", refit=refit,
                             weight_average=average)
        return train(config, tiny_data, progress=False)

    plain, averaged = run(None), run(0.9)
    assert plain.history[0]["train_loss"] == averaged.history[0]["train_loss"]  # same steps
    assert plain.test["mrr"] != averaged.test["mrr"]  # another set of weights is tested
