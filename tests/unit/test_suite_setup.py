"""The suite's own set-up: under `make test` (pytest-xdist, --dist loadgroup) every test
carries its group, or module fixtures and the end-to-end day would silently run twice;
the two e2e test files share one unit (one Airflow day)
(pytest 9.2 renamed the attribute xdist 3.8 sets, hence the pin in pyproject.toml)."""

from __future__ import annotations

import os

import pytest


def test_each_test_runs_in_its_module_group(request):
    if os.environ.get("PYTEST_XDIST_WORKER") is None or \
            not request.config.getoption("loadgroup", False):
        pytest.skip("runs only under `make test` (xdist --dist loadgroup)")
    assert request.node.nodeid.endswith("@" + __name__.rsplit(".", 1)[-1]), request.node.nodeid
    e2e = [i.nodeid for i in request.session.items if i.get_closest_marker("e2e")]
    assert all(n.endswith("@e2e") for n in e2e), e2e
