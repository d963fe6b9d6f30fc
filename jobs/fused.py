"""Fused recurrent models: M same-shape trials as one model, parameters stacked on a leading
member axis (HFTA, Wang et al., MLSys 2021, applied to recurrent cells).

`torch.func.vmap` has no batching rule for the cuDNN/ATen RNN kernels, so the cells are
written out: the input projection of every time step is one batched matmul up front, then
each step is one batched matmul with W_hh plus pointwise gates. The two directions of a
bidirectional layer run side by side as extra members (2M), so a step is one kernel chain
whatever the direction count. The formulas are torch's (nn.RNN tanh, nn.LSTM, nn.GRU r,z,n
with r applied to W_hn h + b_hn), and so is the gate order except an LSTM's, stored i,f,o,g
(swap_lstm_gates), so weights copied from torch modules give the same outputs and
gradients (tests/test_fused.py).

Shapes: a member's batch is (B, T, F); the fused model takes (M, B, T, F), or (B, T, F)
shared by every member (validation), and returns (M, B, n_outputs).
"""

from __future__ import annotations

import torch
from torch import nn

from rnnsweep.jobs.config import ModelConfig
from rnnsweep.jobs.model import SequenceModel


def swap_lstm_gates(cell: str, rows: torch.Tensor) -> torch.Tensor:
    """An LSTM's gate blocks (first dim) between torch's order i,f,g,o and the fused order
    i,f,o,g, where the three sigmoid gates sit side by side (one sigmoid, one tanh per step).
    The swap is its own inverse; other cells are returned as they are."""
    if cell != "lstm":
        return rows
    i, f, g, o = rows.chunk(4, dim=0)
    return torch.cat([i, f, o, g], dim=0)


class FusedSequenceModel(nn.Module):
    """M SequenceModels of one shape; parameter `layer{l}.w_hh` is (M, D, G*H, H)."""

    def __init__(self, members: list[SequenceModel], config: ModelConfig):
        super().__init__()
        if config.layers > 1 and config.dropout > 0:
            raise ValueError("fused models do not do dropout between layers; such trials train unpacked")
        self.cell, self.hidden, self.layers = config.cell, config.hidden, config.layers
        self.directions = 2 if config.bidirectional else 1
        suffixes = ["", "_reverse"][: self.directions]
        for layer in range(self.layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                stacked = torch.stack(
                    [
                        torch.stack(
                            [
                                swap_lstm_gates(self.cell, getattr(m.rnn, f"{kind}_l{layer}{s}").detach())
                                for s in suffixes
                            ]
                        )
                        for m in members
                    ]
                )
                self.register_parameter(f"{kind}_l{layer}", nn.Parameter(stacked.clone()))
        self.head_weight = nn.Parameter(torch.stack([m.head.weight.detach() for m in members]).clone())
        self.head_bias = nn.Parameter(torch.stack([m.head.bias.detach() for m in members]).clone())

    @property
    def members(self) -> int:
        return self.head_weight.shape[0]

    def recurrent_weights(self) -> dict[str, torch.Tensor]:
        """Each W_hh as (M, G*H, H), by torch's names (weight_hh_l0, weight_hh_l0_reverse, ...)."""
        suffixes = ["", "_reverse"][: self.directions]
        stacked = {layer: getattr(self, f"weight_hh_l{layer}") for layer in range(self.layers)}
        return {f"weight_hh_l{layer}{s}": w[:, d] for layer, w in stacked.items() for d, s in enumerate(suffixes)}

    def is_recurrent(self, name: str) -> bool:
        return name.startswith("weight_hh")

    def is_matrix(self, name: str) -> bool:
        """A weight matrix of each member (what L2 decays), not a bias vector."""
        return name.startswith("weight_") or name == "head_weight"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, d, h = self.members, self.directions, self.hidden
        if x.dim() == 3:  # one batch shared by every member
            x = x.unsqueeze(0).expand(m, *x.shape)
        batch, steps = x.shape[1], x.shape[2]
        layer_input = x
        for layer in range(self.layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b_ih, b_hh = getattr(self, f"bias_ih_l{layer}"), getattr(self, f"bias_hh_l{layer}")
            # Every time step's input projection at once: (M, D, B, T, G*H).
            projected = torch.einsum("mbti,mdgi->mdbtg", layer_input, w_ih) + b_ih[:, :, None, None, :]
            if d == 2:  # the reverse direction reads time backwards
                projected = torch.stack([projected[:, 0], projected[:, 1].flip(2)], dim=1)
            # Time-major and contiguous, then unbound once: each step reads dense slabs. A GRU's
            # input is split into its r,z and n parts here, once, rather than sliced every step
            # (each slice's backward would allocate and copy a whole gate-sized tensor).
            time_major = projected.reshape(m * d, batch, steps, -1).permute(2, 0, 1, 3)
            parts = time_major.split([2 * h, h], dim=-1) if self.cell == "gru" else (time_major,)
            inputs = list(zip(*(part.contiguous().unbind(0) for part in parts), strict=True))
            outputs, state = self._scan(inputs, w_hh.reshape(m * d, -1, h), b_hh.reshape(m * d, 1, -1), batch)
            out = torch.stack(outputs, dim=2).view(m, d, batch, steps, h)  # (M*D, B, T, H) as (M, D, ...)
            if d == 2:
                out = torch.stack([out[:, 0], out[:, 1].flip(2)], dim=1)
            layer_input = out.permute(0, 2, 3, 1, 4).reshape(m, batch, steps, d * h)
        final = state.view(m, d, batch, h).permute(0, 2, 1, 3).reshape(m, batch, d * h)  # [forward, reverse]
        return torch.baddbmm(self.head_bias.unsqueeze(1), final, self.head_weight.transpose(1, 2))

    def _scan(self, inputs, w_hh, b_hh, batch):
        """Run the cell over time for M*D sequences at once; returns every step's h and the last h."""
        w_hh_t = w_hh.transpose(1, 2)
        h = inputs[0][0].new_zeros(w_hh.shape[0], batch, self.hidden)
        c = h
        outputs = []
        for x_t in inputs:
            recurrent = torch.baddbmm(b_hh, h, w_hh_t)
            if self.cell == "rnn":
                h = torch.tanh(x_t[0] + recurrent)
            elif self.cell == "lstm":
                sigmoid_gates, g = (x_t[0] + recurrent).split([3 * self.hidden, self.hidden], dim=-1)
                i, f, o = torch.sigmoid(sigmoid_gates).chunk(3, dim=-1)
                c = f * c + i * torch.tanh(g)
                h = o * torch.tanh(c)
            else:
                x_rz, x_n = x_t
                h_rz, h_n = recurrent.split([2 * self.hidden, self.hidden], dim=-1)
                r, z = torch.sigmoid(x_rz + h_rz).chunk(2, dim=-1)
                n = torch.tanh(x_n + r * h_n)
                h = n + z * (h - n)  # (1 - z) * n + z * h
            outputs.append(h)
        return outputs, h

    def keep(self, members: torch.Tensor) -> None:
        """Drop every member not in `members` (indices), in place: a stopped member costs nothing after."""
        # New Parameter objects, not resized .data: autograd remembers a leaf's shape.
        for name, p in list(self.named_parameters()):
            kept = nn.Parameter(p.detach()[members].contiguous())
            if p.grad is not None:  # a member may stop between backward and the optimizer step
                kept.grad = p.grad[members].contiguous()
            setattr(self, name, kept)

    def member_state(self, index: int) -> dict[str, torch.Tensor]:
        """One member's weights under SequenceModel's names, to load into an unfused model."""
        state = {}
        suffixes = ["", "_reverse"][: self.directions]
        for layer in range(self.layers):
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                stacked = getattr(self, f"{kind}_l{layer}")[index]
                for d, s in enumerate(suffixes):
                    state[f"rnn.{kind}_l{layer}{s}"] = swap_lstm_gates(self.cell, stacked[d].detach()).clone()
        state["head.weight"] = self.head_weight[index].detach().clone()
        state["head.bias"] = self.head_bias[index].detach().clone()
        return state
