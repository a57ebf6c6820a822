"""The suite's own order: its longest tests that share no lab (the Ansible deploys to simulated hosts, the
wheel's install into fresh virtualenvs) go first, so that with two xdist workers none of them is left running
alone at the end of `make test`. (After pytest's own ordering, which groups the tests of each shared lab.)"""

from __future__ import annotations

import pytest

FIRST = ("tests/integration/test_deploy.py", "tests/integration/test_install.py")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.startswith(FIRST))  # (a stable sort: the rest keep their order)
