"""Seed 001's own model, as its author wrote it in Keras, as an rnnsweep model factory.

    LSTM(return_sequences=True) -> TimeDistributed(Dense, sigmoid) -> LSTM -> Dense(tanh) -> Dense(linear)

rnnsweep calls build(n_features=..., n_outputs=..., **[model.args]) on every worker and
trains what it returns with the grid's optimizer, loss, schedule and clipping; both LSTMs
are instrumented (sigma_max_hh.encoder.l0, sigma_max_hh.decoder.l0).
"""

import torch
from torch import nn


class StackedWordModel(nn.Module):
    def __init__(self, n_features: int, n_outputs: int, hidden: int, dense: int):
        super().__init__()
        self.encoder = nn.LSTM(n_features, hidden, batch_first=True)  # return_sequences=True
        self.per_step = nn.Linear(hidden, dense)  # TimeDistributed(Dense(dense, activation="sigmoid"))
        self.decoder = nn.LSTM(dense, hidden, batch_first=True)
        self.squash = nn.Linear(hidden, dense)  # Dense(dense, activation="tanh")
        self.out = nn.Linear(dense, n_outputs)  # Dense(n_outputs): the word vector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence, _ = self.encoder(x)
        sequence = torch.sigmoid(self.per_step(sequence))
        _, (last, _) = self.decoder(sequence)
        return self.out(torch.tanh(self.squash(last[-1])))


def build(n_features: int, n_outputs: int, hidden: int = 64, dense: int = 32) -> nn.Module:
    return StackedWordModel(n_features, n_outputs, hidden, dense)
