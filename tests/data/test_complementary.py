"""OE-FSMC's OOD labels follow the complementary distribution Gamma of the class prior."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import chisquare

from fsmc.data.complementary import class_prior, class_weights, complementary_distribution, draw_ood_labels

COUNTS = [50, 38, 29, 23, 17, 13, 10, 8, 6, 5]  # K_max 50, rho 10 (notes/papers.md §1.3)


def test_gamma_and_weights_match_the_open_sampling_rule():
    prior = class_prior(COUNTS)
    distribution = complementary_distribution(prior)
    weights = class_weights(prior)
    expected = [0.014, 0.048, 0.074, 0.091, 0.108, 0.120, 0.128, 0.134, 0.140, 0.142]
    assert np.allclose(distribution.numpy(), expected, atol=1e-3)
    assert np.allclose(weights.numpy(), [10 * g for g in expected], atol=1e-2)
    assert abs(float(weights.mean()) - 1.0) < 1e-6


def test_balanced_prior_gives_uniform_labels_and_unit_weights():
    prior = class_prior([7] * 10)
    assert torch.allclose(complementary_distribution(prior), torch.full((10,), 0.1))
    assert torch.allclose(class_weights(prior), torch.ones(10))


def test_drawn_labels_follow_gamma_seeded_chi_square():
    distribution = complementary_distribution(class_prior(COUNTS))
    generator = torch.Generator().manual_seed(1234)
    labels = torch.cat([draw_ood_labels(distribution, 64, generator) for _ in range(300)])
    observed = np.bincount(labels.numpy(), minlength=10)
    expected = distribution.double().numpy() * len(labels)
    assert chisquare(observed, expected * observed.sum() / expected.sum()).pvalue > 0.01
    # The rarest few-shot class gets about ten times the OOD labels of the most frequent one.
    assert observed[-1] > 5 * observed[0]
    # A uniform draw of the same size is rejected by the same test: the check can fail.
    uniform = np.full(10, len(labels) / 10)
    assert chisquare(observed, uniform).pvalue < 1e-6
