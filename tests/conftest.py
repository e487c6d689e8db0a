"""Shared fixtures. `prosody` gives each test its own fresh Prosody on free loopback ports."""

from __future__ import annotations

import io
import logging
import os
from collections.abc import AsyncIterator, Generator, Iterator

import pytest

from jicofo.logs import PACKET_LOGGER, configure_logging
from jicofo.testing.prosody import (
    FORBID_ENV,
    ProsodyInstance,
    missing_prosody_message,
    prosody_available,
    start_prosody,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "prosody: starts a real Prosody, in-process or in a child process (added "
        "automatically to tests using the fixture; any other test that starts one fails)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Lets a quick local run deselect them with -m "not prosody"; CI runs everything.
    for item in items:
        if "prosody" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.prosody)


def pytest_runtest_setup(item: pytest.Item) -> None:
    # A test not marked `prosody` may not start one (start_prosody refuses, in this process and
    # in the child processes it starts): `-m "not prosody"` is the suite without Prosody.
    if item.get_closest_marker("prosody") is None:
        os.environ[FORBID_ENV] = item.nodeid
    else:
        os.environ.pop(FORBID_ENV, None)
    # A missing Prosody is a broken setup, not a reason to skip: fail loudly. Checked here
    # rather than in the async fixture, where pytest-trio would bury it in an exception group.
    if "prosody" in getattr(item, "fixturenames", ()) and not prosody_available():
        pytest.fail(missing_prosody_message(), pytrace=False)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    os.environ.pop(FORBID_ENV, None)


_LOG_TAIL = pytest.StashKey[str]()


@pytest.fixture
async def prosody(request: pytest.FixtureRequest) -> AsyncIterator[ProsodyInstance]:
    async with start_prosody() as instance:
        try:
            yield instance
        finally:
            # pytest-trio tears fixtures down inside the call phase, before the report is
            # made, so keep the log for pytest_runtest_makereport while the file still exists.
            request.node.stash[_LOG_TAIL] = instance.log_tail(60)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _LOG_TAIL in item.stash:
        report.sections.append(("prosody log", item.stash[_LOG_TAIL]))
    return report


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the logging setup back after a test that configures logging."""
    root = logging.getLogger()
    packets = logging.getLogger(PACKET_LOGGER)
    saved = (list(root.handlers), root.level, packets.level, packets.propagate)
    yield
    configure_logging("WARNING", stream=io.StringIO())  # closes what the test installed
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    packets.setLevel(saved[2])
    packets.propagate = saved[3]
