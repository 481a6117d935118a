"""Configs never rot: every shipped config has its tiny run (run by one of the config tests) and the
parameters that run must end with."""

import json

from .conftest import ROOT
from .reference_runs import REFERENCE_PARAMETERS, TINY_RUNS


def test_every_shipped_config_has_a_tiny_run_and_recorded_parameters():
    shipped = sorted(path.stem for path in (ROOT / "configs").glob("*.yaml"))
    assert sorted(TINY_RUNS) == shipped
    recorded = json.loads(REFERENCE_PARAMETERS.read_text())
    assert sorted(recorded) == shipped, "record them: python -m tests.reference_runs record <name>"
