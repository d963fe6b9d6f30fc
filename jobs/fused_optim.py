"""Per-member optimizers for a fused model: every hyper-parameter is a tensor over members.

torch.optim takes one lr per parameter group, and a fused parameter holds M members, so
the updates are written out here, step for step as torch.optim.Adam / SGD / RMSprop do them
(their default, non-fused code paths), with lr, betas, momentum and weight decay broadcast
per member. Weight decay is torch's coupled L2 on weight matrices, W_hh spared per member
when its `weight_decay_on` is "non_recurrent"; gradient clipping is per member too.
"""

from __future__ import annotations

import torch

from rnnsweep.jobs.config import OptimizerConfig
from rnnsweep.jobs.fused import FusedSequenceModel

EPS = 1e-8  # torch's default eps for Adam and RMSprop
RMSPROP_ALPHA = 0.99


def per_member(values: list[float], device) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32, device=device)


class FusedOptimizer:
    def __init__(self, model: FusedSequenceModel, configs: list[OptimizerConfig]):
        names = {c.name for c in configs}
        if len(names) != 1:
            raise ValueError(f"one optimizer per pack, got {sorted(names)}")
        self.name = names.pop()
        self.model = model
        device = model.head_weight.device
        self.lr = per_member([c.lr for c in configs], device)  # the loop sets it before every step
        self.beta1 = per_member([c.betas[0] for c in configs], device)
        self.beta2 = per_member([c.betas[1] for c in configs], device)
        self.momentum = per_member([c.momentum for c in configs], device)
        decay = per_member([c.weight_decay for c in configs], device)
        spare_hh = per_member([c.weight_decay_on == "non_recurrent" for c in configs], device)
        # Biases never decay; W_hh decays unless the member spares it.
        self.decay = {
            name: (decay * (1 - spare_hh) if model.is_recurrent(name) else decay) if model.is_matrix(name) else None
            for name, _ in model.named_parameters()
        }
        self.steps = 0
        self.state: dict[str, dict[str, torch.Tensor]] = {name: {} for name, _ in model.named_parameters()}

    def keep(self, members: torch.Tensor) -> None:
        """Forget dropped members (see FusedSequenceModel.keep)."""
        for attr in ("beta1", "beta2", "momentum", "lr"):
            setattr(self, attr, getattr(self, attr)[members])
        self.decay = {n: None if d is None else d[members] for n, d in self.decay.items()}
        for buffers in self.state.values():
            for key, value in buffers.items():
                buffers[key] = value[members].contiguous()

    def member_state(self, index: int) -> dict:
        """One member's slice of every buffer, and the step count bias corrections use."""
        buffers = {
            name: {key: value[index].clone() for key, value in state.items()} for name, state in self.state.items()
        }
        return {"steps": self.steps, "buffers": buffers}

    def load_member_states(self, states: list[dict]) -> None:
        """Restack members' states (member_state's form; all taken at the same step)."""
        self.steps = states[0]["steps"]
        device = self.lr.device
        for name, buffers in self.state.items():
            for key in states[0]["buffers"][name]:
                buffers[key] = torch.stack([s["buffers"][name][key] for s in states]).to(device)

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        for name, p in self.model.named_parameters():
            if p.grad is None:
                continue
            shape = (-1,) + (1,) * (p.dim() - 1)  # broadcast a per-member value over one member's tensor
            grad = p.grad
            if self.decay[name] is not None:
                grad = grad + self.decay[name].view(shape) * p
            state = self.state[name]
            lr = self.lr.view(shape)
            if self.name == "adam":
                self._adam(p, grad, state, lr, shape)
            elif self.name == "sgd":
                buffer = state.get("momentum")
                buffer = grad.clone() if buffer is None else buffer * self.momentum.view(shape) + grad
                state["momentum"] = buffer
                p.sub_(lr * buffer)
            else:
                self._rmsprop(p, grad, state, lr, shape)

    def _adam(self, p, grad, state, lr, shape) -> None:
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        beta1, beta2 = self.beta1.view(shape), self.beta2.view(shape)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).add_((1 - beta2) * grad * grad)
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - beta2**self.steps).sqrt()
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
        p.sub_(lr / bias_correction1 * exp_avg / denom)

    def _rmsprop(self, p, grad, state, lr, shape) -> None:
        if not state:
            state["square_avg"], state["momentum"] = torch.zeros_like(p), torch.zeros_like(p)
        square_avg = state["square_avg"].mul_(RMSPROP_ALPHA).add_((1 - RMSPROP_ALPHA) * grad * grad)
        scaled = grad / square_avg.sqrt().add_(EPS)
        state["momentum"] = state["momentum"] * self.momentum.view(shape) + scaled
        p.sub_(lr * state["momentum"])

    def zero_grad(self) -> None:
        for p in self.model.parameters():
            p.grad = None


def member_grad_norms(model: FusedSequenceModel) -> torch.Tensor:
    """Each member's total gradient norm over all its parameters (M,)."""
    squares = [p.grad.pow(2).flatten(1).sum(1) for p in model.parameters() if p.grad is not None]
    return torch.stack(squares).sum(0).sqrt()


def clip_member_grads(model: FusedSequenceModel, norms: torch.Tensor, max_norms: torch.Tensor) -> None:
    """torch.nn.utils.clip_grad_norm_, per member (max_norm inf = no clipping)."""
    coefficient = (max_norms / (norms + 1e-6)).clamp(max=1.0)
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(coefficient.view((-1,) + (1,) * (p.dim() - 1)))
