"""Losses over genotype-code logits.

Every loss takes ``logits`` float32 ``(B, 6, L)`` over codes 0-5 and ``target`` int64 codes
``(B, L)``, and averages over the positions whose true code is a call (1-4): padding (5) and
missing (0) targets never count. Logits a model sets to ``-inf`` (code 0, padding) are fine.
"""

from __future__ import annotations

import numpy as np
import torch

from impbench.genotypes import CODE_DOSAGE, CODE_DOSAGE_CLASS, HOM_ALT, HOM_REF


def call_positions(target: torch.Tensor) -> torch.Tensor:
    """bool (B, L): True where the true code is a call (1-4)."""
    return (target >= HOM_REF) & (target <= HOM_ALT)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    return torch.where(valid, values, torch.zeros_like(values)).sum() / valid.sum().clamp(min=1)


def _per_position_ce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """-log p_y per position (B, L); 0 where not valid (the target is replaced there by a call
    code so that no -inf enters the graph)."""
    safe_target = torch.where(valid, target, torch.full_like(target, HOM_REF))
    log_p = torch.log_softmax(logits.float(), dim=1)
    return -log_p.gather(1, safe_target.unsqueeze(1)).squeeze(1)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over call positions."""
    valid = call_positions(target)
    return _masked_mean(_per_position_ce(logits, target, valid), valid)


def dosage_penalty_matrix(penalty: float = 3.0) -> torch.Tensor:
    """``P[y, y_hat]``, float32 (6, 6): ``penalty`` where a predicted call changes the ALT
    dosage of the true call, 1 for a correct call or a phase swap (0|1 vs 1|0); 1 in the rows
    and columns of codes 0 and 5 (never used)."""
    dosage_class = CODE_DOSAGE_CLASS.astype(np.int64)
    is_call = dosage_class >= 0
    differs = (dosage_class[:, None] != dosage_class[None, :]) & is_call[:, None] & is_call[None, :]
    return torch.from_numpy(np.where(differs, penalty, 1.0).astype(np.float32))


def focal(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, penalty: float = 3.0) -> torch.Tensor:
    """Focal loss weighted by the dosage penalty matrix: mean over call positions of
    ``P[y, argmax] * (1 - p_y) ** gamma * CE``. ``P`` is a weight (not differentiated)."""
    valid = call_positions(target)
    ce = _per_position_ce(logits, target, valid)
    p_true = torch.exp(-ce)
    predicted = logits.argmax(dim=1)
    weight = dosage_penalty_matrix(penalty).to(logits.device)[torch.where(valid, target, HOM_REF), predicted]
    return _masked_mean(weight * (1.0 - p_true) ** gamma * ce, valid)


def dosage_mse(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the expected ALT dosage ``p2 + p3 + 2 p4`` (softmax over the
    six codes) and the true dosage, over call positions."""
    valid = call_positions(target)
    code_dosage = torch.from_numpy(np.nan_to_num(CODE_DOSAGE, nan=0.0)).to(logits.device)
    probs = torch.softmax(logits.float(), dim=1)
    predicted = torch.einsum("bcl,c->bl", probs, code_dosage)
    true = code_dosage[torch.where(valid, target, HOM_REF)]
    return _masked_mean((predicted - true) ** 2, valid)


def dosage_error(logits: torch.Tensor, target: torch.Tensor, weighted: bool = False) -> torch.Tensor:
    """Mean over call positions of ``d**2`` (``weighted=False``: ``dosage_mse``) or
    ``(1 + |d|) * d**2`` (the BiU-Net authors' archived runs), ``d`` the error of the expected
    ALT dosage ``p2 + p3 + 2 p4``."""
    valid = call_positions(target)
    code_dosage = torch.from_numpy(np.nan_to_num(CODE_DOSAGE, nan=0.0)).to(logits.device)
    probs = torch.softmax(logits.float(), dim=1)
    error = torch.einsum("bcl,c->bl", probs, code_dosage) - code_dosage[torch.where(valid, target, HOM_REF)]
    values = error**2 * (1.0 + error.abs()) if weighted else error**2
    return _masked_mean(values, valid)


def hybrid(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, penalty: float = 3.0, dosage_weight: float = 0.5, weighted_dosage: bool = False
) -> torch.Tensor:
    """BiU-Net's hybrid loss: ``(1 - dosage_weight) * focal + dosage_weight * dosage term``;
    the dosage term is the MSE (the paper's text) or, with ``weighted_dosage``, the
    ``(1 + |d|) d**2`` weighting of the authors' archived run configs."""
    return (1.0 - dosage_weight) * focal(logits, target, gamma, penalty) + dosage_weight * dosage_error(logits, target, weighted_dosage)

