"""The recurrent model every task trains: an RNN/LSTM/GRU encoder and a linear head.

The head reads the last layer's final hidden state (both directions when bidirectional),
which is what the seeds' Keras models do with `return_sequences=False`.
"""

from __future__ import annotations

import torch
from torch import nn

from rnnsweep.jobs.config import ModelConfig, OptimizerConfig, TrialConfig

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class SequenceModel(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, config: ModelConfig):
        super().__init__()
        self.directions = 2 if config.bidirectional else 1
        self.rnn = CELLS[config.cell](
            n_features,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden * self.directions, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, hidden = self.rnn(x)
        if isinstance(hidden, tuple):  # LSTM: (h_n, c_n)
            hidden = hidden[0]
        last_layer = hidden[-self.directions :]  # (directions, batch, hidden)
        return self.head(torch.cat(list(last_layer), dim=-1))


def build_model(config: TrialConfig, n_features: int, n_outputs: int) -> nn.Module:
    """The built-in SequenceModel, or the user's own from `model.factory`."""
    if config.model.factory:
        from rnnsweep.jobs.user_code import build_user_model

        return build_user_model(config, n_features, n_outputs)
    return SequenceModel(n_features, n_outputs, config.model)


def recurrent_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every W_hh of every nn.RNN/LSTM/GRU and RNN/LSTM/GRU cell anywhere in the module tree.

    The built-in model's keep torch's names (weight_hh_l0, weight_hh_l0_reverse, ...); in a
    user's module each is named by its module path (weight_hh.encoder.l0, weight_hh.decoder
    for a cell), so two recurrent layers never share a name.
    """
    if isinstance(model, SequenceModel):
        return {name.rpartition(".")[2]: p for name, p in model.rnn.named_parameters() if "weight_hh" in name}
    found = {}
    for path, module in model.named_modules():
        prefix = f"weight_hh.{path}" if path else "weight_hh"
        if isinstance(module, nn.RNNBase):
            for name, p in module.named_parameters(recurse=False):
                if name.startswith("weight_hh_"):
                    found[f"{prefix}.{name.removeprefix('weight_hh_')}"] = p
        elif isinstance(module, nn.RNNCellBase):
            found[prefix] = module.weight_hh
    return found


def parameter_groups(model: nn.Module, config: OptimizerConfig) -> list[dict]:
    """Weight decay on weight matrices (W_hh too unless weight_decay_on = non_recurrent)."""
    decayed, plain = [], []
    for name, p in model.named_parameters():
        skip_recurrent = config.weight_decay_on == "non_recurrent" and "weight_hh" in name
        (decayed if p.ndim >= 2 and not skip_recurrent else plain).append(p)
    return [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def make_optimizer(model: nn.Module, config: OptimizerConfig) -> torch.optim.Optimizer:
    groups = parameter_groups(model, config)
    if config.name == "adam":
        return torch.optim.Adam(groups, lr=config.lr, betas=config.betas)
    if config.name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.RMSprop(groups, lr=config.lr, momentum=config.momentum)
