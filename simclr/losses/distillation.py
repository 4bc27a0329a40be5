"""The distillation loss of SimCLRv2 (Chen et al. 2020, arXiv 2006.10029, eq. 3).

A student is trained to match the teacher's temperature-scaled class distribution:

    L = -(1/N) sum_i sum_y P_T(y | x_i; tau) log P_S(y | x_i; tau),
    P(y | x; tau) = softmax(logits / tau)_y,

the cross-entropy of the student's distribution against the teacher's, which
differs from KL(P_T || P_S) by the teacher's entropy (a constant for the
student). As in the paper there is no tau^2 factor (Hinton et al. add one to
keep gradient scales across temperatures; SimCLRv2 uses tau = 1). With labels,
`labeled_weight` x the ordinary cross-entropy of the labeled rows is added.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def distillation_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    temperature: float = 1.0,
    labels: Tensor | None = None,
    labeled_weight: float = 0.0,
) -> Tensor:
    """Mean over rows of CE(softmax(teacher / tau), log_softmax(student / tau)),
    plus `labeled_weight` x CE(student, labels) over the rows whose label is >= 0.

    Computed in float32 (or wider) outside autocast; the teacher gets no gradient.
    """
    if student_logits.shape != teacher_logits.shape or student_logits.ndim != 2:
        raise ValueError(
            f"distillation needs two N x C logit matrices of one shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature} must be a finite number > 0")
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    with torch.autocast(device_type=student_logits.device.type, enabled=False):
        s = student_logits.to(dtype)
        target = F.softmax(teacher_logits.detach().to(dtype) / temperature, dim=1)
        loss = -(target * F.log_softmax(s / temperature, dim=1)).sum(dim=1).mean()
        if labels is not None and labeled_weight > 0:
            keep = labels >= 0
            if bool(keep.any()):
                loss = loss + labeled_weight * F.cross_entropy(s[keep], labels[keep])
    return loss
