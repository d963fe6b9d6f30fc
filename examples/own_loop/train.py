"""A hand-written training loop run by rnnsweep: `sweep.entrypoint = "train:main"`.

Every trial's worker calls main(config, run) with [params] as `config`. The loop is the
user's own (its data, model, optimizer and schedule); rnnsweep gives it the metric log
(`run.log`), instrumentation of every recurrent layer (`run.watch`), and checkpoints that a
retried attempt resumes from (`run.checkpoint`, `run.restored`).

Task: predict the next value of a noisy sine wave from the 30 before it (regression).
"""

import math

import torch
from torch import nn


def waves(n: int, length: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    phase = torch.rand(n, 1, generator=generator) * 2 * math.pi
    frequency = 0.1 + 0.2 * torch.rand(n, 1, generator=generator)
    t = torch.arange(length + 1).float()
    signal = torch.sin(phase + frequency * t) + 0.05 * torch.randn(n, length + 1, generator=generator)
    return signal[:, :-1, None], signal[:, -1:]


class NextValue(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.rnn = nn.GRU(1, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        _, last = self.rnn(x)
        return self.head(last[-1])


def main(config: dict, run) -> None:
    torch.manual_seed(config["seed"])
    data = torch.Generator().manual_seed(0)
    x_train, y_train = waves(1024, 30, data)
    x_val, y_val = waves(256, 30, data)
    model = NextValue(config["hidden"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    run.watch(model)  # sigma_max_hh.rnn.l0 and weight_norm beside every validation loss

    first_epoch, step = 1, 0
    saved = run.restored()  # a retried attempt goes on where the dead one checkpointed
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        first_epoch, step = saved["epoch"] + 1, saved["step"]

    for epoch in range(first_epoch, config["epochs"] + 1):
        order = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(epoch))
        for rows in order.split(64):
            loss = nn.functional.mse_loss(model(x_train[rows]), y_train[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            run.log(step, epoch=epoch, train_loss=loss.item())
        with torch.no_grad():
            run.log(step, epoch=epoch, val_loss=nn.functional.mse_loss(model(x_val), y_val).item())
        run.checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "step": step})
