"""Stage 2 (paper Section 3.3, Algorithm 2): offline distillation of the teacher's μ into a
student that sees only the agent's local input.

loss = Σ_z (μ'_i − μ_i)², averaged over rows; Adam; grad-norm clip; an 80/20 train/validation
split with early stopping on the validation loss.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from ptde.data.teacher_dataset import TeacherDataset
from ptde.nn.global_info import StudentModule


def distill_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error summed over z, mean over rows."""
    return (pred - target).pow(2).sum(-1).mean()


class DistillationModule(L.LightningModule):
    def __init__(self, input_dim: int, z_dim: int, distill_cfg: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.cfg = distill_cfg
        self.student = StudentModule(input_dim, distill_cfg["student_hidden_dim"], z_dim)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.student.parameters(), lr=self.cfg["lr"])

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, mu = batch
        loss = distill_loss(self.student(x), mu)
        self.log("distill/train_mse", loss, on_step=True, on_epoch=False, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, mu = batch
        loss = distill_loss(self.student(x), mu)
        self.log("distill/val_mse", loss, on_epoch=True, reduce_fx="mean", batch_size=x.shape[0], prog_bar=True)


def split_dataset(data: TeacherDataset, val_fraction: float, seed: int) -> tuple[TensorDataset, TensorDataset]:
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(len(data) * val_fraction))
    val, train = perm[:n_val], perm[n_val:]
    return TensorDataset(data.inputs[train], data.mu[train]), TensorDataset(data.inputs[val], data.mu[val])


@torch.no_grad()
def evaluate_mse(student: StudentModule, ds: TensorDataset, batch_size: int = 8192) -> float:
    total, rows = 0.0, 0
    for x, mu in DataLoader(ds, batch_size=batch_size):
        total += (student(x) - mu).pow(2).sum().item()
        rows += x.shape[0]
    return total / max(rows, 1)


def make_loaders(train: TensorDataset, val: TensorDataset, batch_size: int, seed: int) -> tuple[DataLoader, DataLoader]:
    """Batches are drawn as index lists and gathered in one indexing op per tensor (per-row
    collation of 1000 rows costs more than the student's update)."""
    g = torch.Generator().manual_seed(seed)
    sampler = BatchSampler(RandomSampler(train, generator=g), batch_size, drop_last=len(train) > batch_size)
    val_sampler = BatchSampler(SequentialSampler(val), 8192, drop_last=False)
    return (
        DataLoader(train, sampler=sampler, batch_size=None),
        DataLoader(val, sampler=val_sampler, batch_size=None),
    )
