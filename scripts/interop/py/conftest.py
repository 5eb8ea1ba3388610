import pytest

from bridge import FIXTURE_BIN, Bridge


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="class")
def bridge(request):
    # A test class may set BRIDGE_ARGS (e.g. session isolation) for the bridge it runs against.
    b = Bridge([FIXTURE_BIN], args=getattr(request.cls, "BRIDGE_ARGS", ()))
    try:
        yield b
    finally:
        b.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test's report also shows the tail of the bridge's stderr."""
    report = yield
    b = item.funcargs.get("bridge") if hasattr(item, "funcargs") else None
    if report.failed and b is not None:
        report.sections.append(("bridge stderr (tail)", b.stderr_tail()))
    return report
