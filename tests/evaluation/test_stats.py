"""Confidence intervals and per-step summaries."""

import math

import torch

from lit_meta.evaluation import mean_confidence_interval, summarise_per_step
from lit_meta.evaluation.stats import format_estimate


def test_interval_matches_the_textbook_student_t_value():
    mean, half_width = mean_confidence_interval(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    # t_{0.975, 4} = 2.776445 (statistical tables); s = sqrt(2.5); n = 5
    assert mean == 3.0
    assert math.isclose(half_width, 2.776445 * math.sqrt(2.5) / math.sqrt(5), rel_tol=1e-6)


def test_large_samples_approach_the_normal_interval():
    values = torch.randn(100_000, generator=torch.Generator().manual_seed(0)).double()
    _, half_width = mean_confidence_interval(values)
    assert math.isclose(half_width, 1.959964 * values.std().item() / math.sqrt(values.numel()), rel_tol=1e-4)


def test_a_single_value_has_no_interval():
    mean, half_width = mean_confidence_interval(torch.tensor([2.5]))
    assert mean == 2.5 and math.isnan(half_width)


def test_per_step_records_follow_the_columns():
    values = torch.tensor([[1.0, 10.0], [3.0, 10.0]])
    records = summarise_per_step(values)
    assert [r["step"] for r in records] == [0, 1]
    assert [r["mean"] for r in records] == [2.0, 10.0]
    assert records[1]["ci"] == 0.0


def test_an_estimate_prints_its_interval_or_says_there_is_none():
    assert format_estimate(0.5, 0.0123, 3) == "0.500 ± 0.012 (95% CI)"
    single = format_estimate(*mean_confidence_interval(torch.tensor([0.25])))
    assert single == "0.2500 (a single task: no confidence interval)" and "nan" not in single
