"""OE-FSMC's OOD labelling: labels drawn against the few-shot class prior.

Re-implementation of Open-Sampling (Wei et al., ICML 2022, ``alg/ood_noise.py``),
the mechanism OE-FSMC's abstract describes (see notes/papers.md §1.3):

* prior ``pi_c = n_c / sum_j n_j``
* complementary rate ``Gamma_c = max_j pi_j + min_j pi_j - pi_c``
* OOD label ``y~ ~ Categorical(Gamma / sum Gamma)``, re-drawn for every OOD image
  in every batch ("dynamically assigned labels")
* class weight ``w_c = C * Gamma_c / sum_j Gamma_j`` (stronger regularisation on
  minority classes; mean weight is 1)
"""

from __future__ import annotations

import torch


def class_prior(counts: list[int]) -> torch.Tensor:
    """pi: the few-shot class frequencies, indexed by class."""
    total = float(sum(counts))
    return torch.tensor([c / total for c in counts], dtype=torch.float64)


def complementary_rates(prior: torch.Tensor) -> torch.Tensor:
    """Gamma_c = max pi + min pi - pi_c (unnormalised)."""
    return prior.max() + prior.min() - prior


def complementary_distribution(prior: torch.Tensor) -> torch.Tensor:
    """Gamma / sum Gamma: the distribution OOD labels are drawn from."""
    rates = complementary_rates(prior)
    return (rates / rates.sum()).float()


def class_weights(prior: torch.Tensor) -> torch.Tensor:
    """w_c = C * Gamma_c / sum Gamma (float32)."""
    rates = complementary_rates(prior)
    return (len(rates) * rates / rates.sum()).float()


def draw_ood_labels(distribution: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """``size`` labels i.i.d. from ``distribution``."""
    return torch.multinomial(distribution, size, replacement=True, generator=generator)
