"""The faster training and evaluation paths compute what the plain ones do: the written-out
encoder, the cheaper dropout, and evaluation in length order."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nextloc.models import build_model
from nextloc.models.layers import cheap_dropout, pre_norm_encoder, run_encoder
from nextloc.train import evaluate


def test_the_written_out_encoder_is_torchs_encoder_in_values_and_gradients():
    torch.manual_seed(0)
    encoder = pre_norm_encoder(16, 2, 4, 32, dropout=0.0).train()
    steps = torch.randn(5, 7, 16, requires_grad=True)
    lengths = torch.tensor([7, 3, 1, 5, 6])
    padding = torch.arange(7)[None, :] >= lengths[:, None]
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
