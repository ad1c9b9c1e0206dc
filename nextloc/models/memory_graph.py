"""The prior report's "Memory-Augmented Graph Model" (there: 495K parameters, designed but
"NOT TRAINED YET"): the baseline transformer plus an external memory, a location graph learned from
train transitions with a graph convolution over the location embeddings, and a pointer network
over the history.

The prior report lists the four parts only; the interpretation made here:

- Encoder: the baseline's (location + user + hour + weekday embeddings, sinusoidal positions,
  pre-norm causal transformer, last real step) at the baseline's width 88 but with 3 layers
  (feed-forward 228) to make room for the other parts: 494,584 parameters with 1,187 locations
  and 45 users (prior report: 495K).
- ``use_graph``: :meth:`fit_statistics` counts location transitions in the train split, from
  consecutive history steps and from each sample's last step to its target (a transition is
  counted once per sample window that holds it; self-transitions are dropped), symmetrises the
  counts into co-occurrence, keeps each location's ``graph_neighbours`` (32) strongest
  neighbours and row-normalises them. The graph is stored as two persistent [N, k] buffers
  (neighbour index and weight, ~0.3 MB), so checkpoints carry it. ``graph_steps`` (2)
  residual propagation steps E <- E + GELU((P E) W_s) refine the location embeddings that
  enter the encoder. Before ``fit_statistics`` the graph is empty and the steps are no-ops.
- ``use_memory``: 80 learned slots (keys and values); the history summary h queries them by
  scaled dot-product attention and h <- LayerNorm(h + W_o read).
- ``use_pointer``: attention from h over the encoder outputs of the history steps, scattered
  onto their location ids with ``scatter_add`` (p_copy), mixed with the classifier's
  distribution p_gen by a learned gate g = sigmoid(w . h + b):
  p = g * p_copy + (1 - g) * p_gen, returned as log(max(p, 1e-9)).
  The loss is the label-smoothed NLL of this mixture.

Each part is an option (default True) and is not built when off, for ablations.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nextloc.models.base import NextLocationModel, register
from nextloc.models.layers import add_encoder_trunk, encode_with_trunk

EPSILON = 1e-9


def transition_graph(train, num_locations: int, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``neighbours`` co-occurrence graph of a :class:`~nextloc.data.split.Split`,
    row-normalised: (index int64 [N, k], weight float32 [N, k]); missing neighbours have weight
    0."""
    ends = train.offsets[1:]
    inside = np.ones(len(train.location), dtype=bool)
    inside[ends - 1] = False  # the last step of each history has no successor inside it
    step = np.flatnonzero(inside)
    source = np.concatenate([train.location[step], train.location[ends - 1]])
    destination = np.concatenate([train.location[step + 1], train.target])
    keep = source != destination
    counts = np.zeros((num_locations, num_locations), dtype=np.float32)
    np.add.at(counts, (source[keep], destination[keep]), 1.0)
    counts += counts.T
    k = min(neighbours, num_locations)
    index = np.argpartition(-counts, k - 1, axis=1)[:, :k]
    weight = np.take_along_axis(counts, index, axis=1)
    total = weight.sum(axis=1, keepdims=True)
    weight = np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)
    return index.astype(np.int64), weight.astype(np.float32)


@register("memory_graph")
class MemoryGraph(NextLocationModel):
    def __init__(self, num_locations: int, num_users: int, dim: int = 88, layers: int = 3,
                 heads: int = 4, feedforward: int = 228, dropout: float = 0.15,
                 use_memory: bool = True, use_graph: bool = True, use_pointer: bool = True,
                 memory_slots: int = 80, graph_neighbours: int = 32, graph_steps: int = 2):
        super().__init__(num_locations, num_users)
        self.use_memory, self.use_graph, self.use_pointer = use_memory, use_graph, use_pointer
        self.location = nn.Embedding(num_locations, dim, padding_idx=0)
        self.user = nn.Embedding(num_users + 1, dim)
        self.hour = nn.Embedding(24, dim)
        self.weekday = nn.Embedding(7, dim)
        add_encoder_trunk(self, num_locations, dim, layers, heads, feedforward, dropout)
        if use_graph:
            k = min(graph_neighbours, num_locations)
            self.register_buffer("neighbour_index", torch.zeros(num_locations, k, dtype=torch.long))
            self.register_buffer("neighbour_weight", torch.zeros(num_locations, k))
            self.graph_layers = nn.ModuleList(nn.Linear(dim, dim, bias=False)
                                              for _ in range(graph_steps))
        if use_memory:
            self.memory_keys = nn.Parameter(torch.randn(memory_slots, dim) / math.sqrt(dim))
            self.memory_values = nn.Parameter(torch.randn(memory_slots, dim) * 0.02)
            self.memory_query = nn.Linear(dim, dim)
            self.memory_out = nn.Linear(dim, dim)
            self.memory_norm = nn.LayerNorm(dim)
        if use_pointer:
            self.pointer_query = nn.Linear(dim, dim)
            self.pointer_key = nn.Linear(dim, dim)
            self.pointer_gate = nn.Linear(dim, 1)

    def fit_statistics(self, train) -> None:
        if not self.use_graph:
            return
        index, weight = transition_graph(train, self.num_locations, self.neighbour_index.shape[1])
        self.neighbour_index = torch.from_numpy(index).to(self.neighbour_index.device)
        self.neighbour_weight = torch.from_numpy(weight).to(self.neighbour_weight.device)

    def location_table(self) -> torch.Tensor:
        """[N, dim] location embeddings, refined by the graph convolution when it is on."""
        table = self.location.weight
        if not self.use_graph:
            return table
        for layer in self.graph_layers:
            neighbours = torch.einsum("nk,nkd->nd", self.neighbour_weight,
                                      table[self.neighbour_index])
            table = table + F.gelu(layer(neighbours))
        return table

    def encode_steps(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoder outputs [B, L, dim], history summary [B, dim])."""
        location = batch["location"]
        steps = (F.embedding(location, self.location_table()) + self.user(batch["user"])[:, None]
                 + self.hour(batch["start_min"] // 60) + self.weekday(batch["weekday"]))
        hidden, summary = encode_with_trunk(self, steps, batch)
        if self.use_memory:
            scores = self.memory_query(summary) @ self.memory_keys.T / math.sqrt(summary.shape[-1])
            read = torch.softmax(scores, dim=-1) @ self.memory_values
            summary = self.memory_norm(summary + self.dropout(self.memory_out(read)))
        return hidden, summary

    def encode(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode_steps(batch)[1]

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden, summary = self.encode_steps(batch)
        generation = torch.log_softmax(self.classifier(self.dropout(summary)), dim=-1)
        if not self.use_pointer:
            return generation
        keys = self.pointer_key(hidden)
        scores = (keys @ self.pointer_query(summary)[:, :, None])[..., 0]
        scores = scores / math.sqrt(summary.shape[-1])
        attention = torch.softmax(scores.masked_fill(~batch["mask"], float("-inf")), dim=-1)
        copy = torch.zeros_like(generation).scatter_add(1, batch["location"], attention)
        gate = torch.sigmoid(self.pointer_gate(summary))
        mixture = gate * copy + (1 - gate) * generation.exp()
        return torch.log(mixture.clamp(min=EPSILON))
