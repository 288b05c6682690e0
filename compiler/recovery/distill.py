"""The knowledge-distillation loss: temperature-scaled KL divergence to the teacher (x T^2), plus cross-entropy.

    loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, labels)

Hinton et al.'s form: the T^2 keeps the soft term's gradients on the scale of the hard one as T grows. Without
labels the loss is the distillation term alone (alpha is then ignored), so unlabelled data works. Both terms are
means over the batch, which is what makes gradient accumulation of N micro-batches (each loss / N) equal one
batch N times larger.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None = None,
                      alpha: float = 0.5, temperature: float = 4.0) -> torch.Tensor:
    """Mean loss over the batch; `student`/`teacher` are logits (N, classes), `labels` class indices (N,)."""
    t = float(temperature)
    kl = F.kl_div(F.log_softmax(student / t, dim=-1), F.log_softmax(teacher / t, dim=-1), log_target=True,
                  reduction="batchmean") * (t * t)
    if labels is None:
        return kl
    return alpha * kl + (1.0 - alpha) * F.cross_entropy(student, labels)
