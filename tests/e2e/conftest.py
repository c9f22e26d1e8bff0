"""pytest fixtures for the end-to-end tests: one `wrangler dev` gate per test module."""

import pytest

from gate import Gate


@pytest.fixture(scope="module")
def gate():
    with Gate() as running:
        yield running
