"""The training loop's optimizer: AdamW, gradient clipping and an optional moving average of
the weights over one flat buffer, and the learning-rate schedule.

The models of this report have dozens of parameter tensors with few numbers in each, and on the
CPU the per-tensor bookkeeping of ``torch.optim.AdamW`` and of ``clip_grad_norm_`` costs more
than their arithmetic. :class:`FlatAdamW` makes every trainable parameter a view into one flat
buffer, and its gradient a view into a second one, so that AdamW's fused kernel and the clipping
each work on a single tensor. The update is the same up to rounding: the gradient norm sums
its squares in another order, and the fused kernel rounds the last few numbers of a tensor
(which it handles one by one) differently in the last bit.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def share_one_buffer(parameters: list[nn.Parameter]) -> nn.Parameter:
    """Move ``parameters`` (values unchanged) into one flat buffer, their gradients into a
    zeroed second one; return the flat parameter, whose ``grad`` is that second buffer.

    Backward then adds each new gradient into its view in place, so the gradients must be
    zeroed in place between steps (:meth:`FlatAdamW.zero_grad`), never set to None. A parameter
    that gets no gradient (one of a path an ablation switches off) thus has a zero one, which
    AdamW, unlike a missing one, answers with weight decay; such a parameter takes no part in
    the model's output, so nothing the model computes changes.
    """
    flat = nn.Parameter(torch.cat([parameter.detach().reshape(-1) for parameter in parameters]))
    flat.grad = torch.zeros_like(flat)
    offset = 0
    for parameter in parameters:
        size = parameter.numel()
        parameter.data = flat.data[offset:offset + size].view_as(parameter)
        parameter.grad = flat.grad[offset:offset + size].view_as(parameter)
        offset += size
    return flat


class FlatAdamW:
    """``torch.optim.AdamW`` over the flat buffer of ``parameters`` (``optimizer``, for a
    learning-rate scheduler), with the three calls of a training step.

    With ``average`` (a decay, e.g. 0.999) it also keeps an exponential moving average of the
    weights, one in-place operation on the flat buffer after each step: inside
    :meth:`averaged_weights` the model holds the average, and :meth:`keep_average` leaves it
    there for good.
    """

    def __init__(self, parameters: list[nn.Parameter], lr: float, weight_decay: float,
                 fused: bool, average: float | None = None):
        self.flat = share_one_buffer(parameters)
        self.optimizer = torch.optim.AdamW([self.flat], lr=lr, weight_decay=weight_decay,
                                           fused=fused)
        self.average_decay = average
        self.average = self.flat.detach().clone() if average else None

    def zero_grad(self) -> None:
        self.flat.grad.zero_()

    def clip_grad_norm(self, max_norm: float) -> None:
        """``clip_grad_norm_`` (the same factor), without its per-call bookkeeping."""
        norm = torch.linalg.vector_norm(self.flat.grad)
        self.flat.grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))

    def step(self) -> None:
        self.optimizer.step()
        if self.average is not None:
            self.average.lerp_(self.flat.detach(), 1 - self.average_decay)

    @contextmanager
    def averaged_weights(self):
        """The model's parameters hold the averaged weights inside the block (without an
        average, the block changes nothing)."""
        if self.average is None:
            yield
            return
        current = self.flat.detach().clone()
        self.flat.data.copy_(self.average)
        try:
            yield
        finally:
            self.flat.data.copy_(current)

    def keep_average(self) -> None:
        if self.average is not None:
            self.flat.data.copy_(self.average)
