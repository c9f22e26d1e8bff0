"""pytest fixtures for the end-to-end tests: a sandbox per module, a fresh `wrangler dev`
gate per test (its own Durable Object state), and `world` joining them."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the sandbox package

from gate import Gate  # noqa: E402
from sandbox.client import SandboxProcess  # noqa: E402
from world import World, gate_vars  # noqa: E402


@pytest.fixture(scope="module")
def gate():
    """A gate with no sandbox behind it (smoke tests)."""
    with Gate() as running:
        yield running


@pytest.fixture(scope="module")
def sandbox():
    with SandboxProcess() as process:
        yield process


@pytest.fixture
def world(request, sandbox):
    """The sandbox (reset by each test's release) and a fresh gate pointed at it.
    A test can ask for extra gate vars with @pytest.mark.gate_vars(NAME="value"); `{sandbox}`
    in a value is the sandbox's base URL."""
    marker = request.node.get_closest_marker("gate_vars")
    extra = {k: v.replace("{sandbox}", sandbox.base) for k, v in (marker.kwargs if marker else {}).items()}
    with Gate(extra_vars=gate_vars(sandbox.base, **extra)) as running:
        yield World(sandbox.client, running)
