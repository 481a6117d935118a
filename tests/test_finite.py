"""The finite check against the obvious per-tensor loop."""

import pytest
import torch

from lit_meta.finite import all_finite, first_non_finite, first_non_finite_in_state


def reference(named):
    for name, tensor in named:
        if tensor is not None and tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            return name
    return None


@pytest.mark.parametrize("small", [1 << 20, 0])  # one copied tensor per group, or none copied
@pytest.mark.parametrize("seed", range(20))
def test_first_non_finite_agrees_with_a_loop(seed, small, monkeypatch):
    monkeypatch.setattr("lit_meta.finite.SMALL", small)
    generator = torch.Generator().manual_seed(seed)
    named = []
    for index in range(8):
        dtype = [torch.float32, torch.float64, torch.bfloat16, torch.int64][index % 4]
        tensor = (torch.randn(5, 3, generator=generator) * 1e30).to(dtype)  # huge but finite
        if torch.rand(1, generator=generator).item() < 0.2 and dtype.is_floating_point:
            tensor.view(-1)[int(torch.randint(15, (1,), generator=generator))] = [
                float("nan"), float("inf"), float("-inf")
            ][index % 3]  # fmt: skip
        named.append((f"t{index}", tensor))
    named.append(("empty", torch.empty(0)))
    named.append(("missing gradient", None))
    assert first_non_finite(named) == reference(named)
    assert all_finite(tensor for _, tensor in named) is (reference(named) is None)


def test_the_first_in_the_given_order_is_named_across_dtypes():
    named = [("a", torch.ones(2, dtype=torch.float64)), ("b", torch.tensor([float("nan")])),
             ("c", torch.tensor([float("inf")], dtype=torch.float64))]  # fmt: skip
    assert first_non_finite(named) == "b"
    assert first_non_finite(named[::-1]) == "c"
    assert first_non_finite([]) is None


def test_nested_checkpoint_entries_are_named_by_their_path():
    state = {
        "layer": {"weight": torch.ones(2)},
        "optimizer": [{"exp_avg": torch.tensor([1.0, float("nan")])}],
    }
    assert first_non_finite_in_state(state) == "optimizer.0.exp_avg"
    assert first_non_finite_in_state({"w": torch.ones(3)}) is None
