"""The official Python SDK `Client` in each of its era modes against the bridge in front of a
child of each era.

Modes: "legacy" (initialize, a session), "2026-07-28" (stateless, no probe) and "auto" (probes
`server/discover`, falls back to initialize). The bridge answers `server/discover` whatever its
child's era, so through it "auto" always ends up on 2026-07-28. Children: fake-mcp-server
(session era, initialized once by the bridge) and modern-mcp-server (2026-07-28).

Every combination is expected to work. A gap found later goes in GAPS, marked
`xfail(strict=True, raises=...)` with the reason, so a fix shows up as an unexpected pass and a
different failure as a failure.
"""

import json
import time

import anyio
import pytest

import mcp.types as types
from mcp.client.subscriptions import ResourceUpdated
from mcp.shared.exceptions import MCPError

from bridge import CHILDREN, Bridge
from flows import QUIET, WireLog, bounded, connect, text_of, until

MODERN = "2026-07-28"
MODES = ("legacy", MODERN, "auto")
# The era each mode speaks through the bridge.
ERA = {"legacy": "legacy", MODERN: "modern", "auto": "modern"}
SERVER_NAMES = {"legacy": "fake-mcp-server", "modern": "modern-mcp-server"}
ELICITED = {"name": "Ada"}

# What fails, by (feature, client era, child era): nothing at the moment.
GAPS: dict = {}


def matrix(feature: str) -> list:
    """Every mode × child, with the known gap of `feature` marked."""
    return [
        pytest.param(mode, child, id=f"{mode}-client/{child}-child", marks=GAPS.get((feature, ERA[mode], child), ()))
        for mode in MODES
        for child in CHILDREN
    ]


@pytest.fixture
def bridge(child):
    # A bridge per test: a request a known gap leaves hanging cannot reach the next test.
    b = Bridge([CHILDREN[child]])
    try:
        yield b
    finally:
        b.stop()


def cancellations(result: types.CallToolResult) -> list:
    return json.loads(text_of(result))


@pytest.mark.anyio
class TestEras:
    @pytest.mark.parametrize("mode,child", matrix("connect"))
    @bounded
    async def test_connect(self, bridge, mode, child):
        async with connect(bridge, mode) as c:
            assert c.protocol_version == ("2025-11-25" if ERA[mode] == "legacy" else MODERN)
            if mode == MODERN:
                # A pinned revision is adopted without a probe: no server info, no capabilities.
                assert c.server_info is None
            else:
                # From initialize (legacy) or server/discover (auto), the bridge's or the child's.
                assert c.server_info.name == SERVER_NAMES[child]
                assert c.server_capabilities.tools is not None
        assert bridge.health()["sessions"] == 0, "the session ended with the client"

    @pytest.mark.parametrize("mode,child", matrix("tools"))
    @bounded
    async def test_tools_list_and_echo(self, bridge, mode, child):
        wire = WireLog()
        async with connect(bridge, mode, wire) as c:
            names = {t.name for t in (await c.list_tools()).tools}
            assert {"echo", "add", "slow", "cancellations", "touch"} <= names
            assert ("ask_name" if child == "modern" else "elicit") in names
            result = await c.call_tool("echo", {"text": f"{mode} to {child}"})
            assert text_of(result) == f"{mode} to {child}"
            assert text_of(await c.call_tool("add", {"a": 2, "b": 40})) == "42"
        methods = [m["method"] for m in wire.sent if "method" in m]
        if ERA[mode] == "legacy":
            assert methods[:2] == ["initialize", "notifications/initialized"], methods
        else:
            assert "initialize" not in methods, methods
            assert (methods[0] == "server/discover") == (mode == "auto"), methods
            assert all("io.modelcontextprotocol/protocolVersion" in m["params"]["_meta"] for m in wire.sent), wire.sent

    @pytest.mark.parametrize("mode,child", matrix("concurrency"))
    @bounded
    async def test_concurrent_clients_with_colliding_ids(self, bridge, mode, child):
        await self.concurrent_clients(bridge, [mode] * 4)

    @pytest.mark.parametrize("child", CHILDREN)
    @bounded
    async def test_clients_of_every_mode_at_once(self, bridge, child):
        await self.concurrent_clients(bridge, list(MODES) * 2)

    @staticmethod
    async def concurrent_clients(bridge, modes: list[str], calls: int = 12):
        """Clients in `modes`, each with `calls` calls in flight at once; every client numbers its
        requests the same way, so their ids collide at the bridge."""
        failures, wires = [], [WireLog() for _ in modes]

        async def one_call(c, n, i):
            if i % 2 == 0:
                want = f"client {n} call {i}"
                got = text_of(await c.call_tool("echo", {"text": want}))
            else:
                want = str(n * 1000 + i)
                got = text_of(await c.call_tool("add", {"a": n * 1000, "b": i}))
            if want != got:
                failures.append((modes[n], n, i, want, got))

        async def one_client(n):
            async with connect(bridge, modes[n], wires[n]) as c:
                async with anyio.create_task_group() as tg:
                    for i in range(calls):
                        tg.start_soon(one_call, c, n, i)

        async with anyio.create_task_group() as tg:
            for n in range(len(modes)):
                tg.start_soon(one_client, n)
        assert failures == []
        ids = [set(w.request_ids("tools/call")) for w in wires]
        assert all(len(i) == calls for i in ids)
        assert set.intersection(*ids), f"the clients' request ids did not collide: {ids}"

    @pytest.mark.parametrize("mode,child", matrix("cancellation"))
    @bounded
    async def test_cancellation(self, bridge, mode, child):
        wire = WireLog()
        async with connect(bridge, mode, wire) as c:
            started = time.monotonic()
            with anyio.move_on_after(0.3) as scope:
                await c.call_tool("slow", {"ms": 10_000})
            assert scope.cancelled_caught, "the slow call finished before it was cancelled"
            assert time.monotonic() - started < 5
            seen = []

            async def child_saw_it():
                seen[:] = cancellations(await c.call_tool("cancellations", {}))
                return bool(seen)

            with anyio.fail_after(5):
                while not await child_saw_it():
                    await anyio.sleep(0.05)
            assert len(seen) == 1 and seen[0]["requestId"] is not None, seen
            # Legacy: the SDK sent notifications/cancelled. 2026-07-28: it closed the reply
            # stream (that revision has no client notifications), and the bridge cancelled.
            cancels = [m for m in wire.sent if m.get("method") == "notifications/cancelled"]
            assert len(cancels) == (1 if ERA[mode] == "legacy" else 0), cancels
            await until(lambda: bridge.health()["pendingRequests"] == 0, what="no request pending at the bridge")
            assert text_of(await c.call_tool("slow", {"ms": 50})) == "slept 50"
            assert text_of(await c.call_tool("echo", {"text": "after cancel"})) == "after cancel"

    @pytest.mark.parametrize("mode,child", matrix("progress"))
    @bounded
    async def test_progress(self, bridge, mode, child):
        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, total))

        async with connect(bridge, mode) as c:
            result = await c.call_tool("progress", {"n": 4, "ms": 10}, progress_callback=on_progress)
            assert text_of(result) == "progress done 4"
            assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]

    @pytest.mark.parametrize("mode,child", matrix("logging"))
    @bounded
    async def test_logging(self, bridge, mode, child):
        """At "warning": a session sets it with logging/setLevel, a 2026-07-28 client sends it in
        every request's _meta."""
        logs = []

        async def on_log(params: types.LoggingMessageNotificationParams):
            logs.append((params.level, params.data))

        async with connect(bridge, mode, logging_callback=on_log, log_level="warning") as c:
            if ERA[mode] == "legacy":
                await c.set_logging_level("warning")
            sent = [("error", "e-1"), ("info", "i-1"), ("debug", "d-1"), ("warning", "w-1")]
            for level, message in sent:
                text_of(await c.call_tool("log", {"level": level, "message": message}))
            await until(lambda: {"e-1", "w-1"} <= {data for _, data in logs}, what="error and warning logs")
            await anyio.sleep(QUIET)
            assert sorted(l for l in logs if l in sent) == [("error", "e-1"), ("warning", "w-1")]

    @pytest.mark.parametrize("mode,child", matrix("elicitation"))
    @bounded
    async def test_elicitation(self, bridge, mode, child):
        """The modern child asks with input_required (the bridge makes that an elicitation/create
        server request for a session); the legacy child sends elicitation/create itself."""
        asked = []

        async def elicitation(context, params: types.ElicitRequestParams):
            asked.append(params)
            return types.ElicitResult(action="accept", content=ELICITED)

        # A short timeout: where the bridge cannot carry the question, the call never ends.
        async with connect(bridge, mode, read_timeout=5, elicitation_callback=elicitation) as c:
            if child == "modern":
                assert text_of(await c.call_tool("ask_name", {})) == "Hello, Ada"
                assert asked[0].message == "What is your name?"
            else:
                reply = json.loads(text_of(await c.call_tool("elicit", {"message": "Who are you?"})))
                assert reply == {"action": "accept", "content": ELICITED}
                assert asked[0].message == "Who are you?"
        assert len(asked) == 1
        assert asked[0].requested_schema["properties"]["name"]["type"] == "string"

    @pytest.mark.parametrize("mode,child", matrix("subscription"))
    @bounded
    async def test_subscription(self, bridge, mode, child):
        """fixture://hello, which both children have; `touch` says it changed."""
        if ERA[mode] == "legacy":
            await self.subscribe_in_a_session(bridge, mode)
        else:
            await self.listen(bridge, mode)

    @staticmethod
    async def subscribe_in_a_session(bridge, mode):
        updates = []

        async def handler(message):
            if isinstance(message, types.ResourceUpdatedNotification):
                updates.append(str(message.params.uri))

        async with connect(bridge, mode, message_handler=handler) as c:
            await c.subscribe_resource("fixture://hello")
            assert text_of(await c.call_tool("touch", {"uri": "fixture://hello"})).startswith("touched")
            await until(lambda: updates == ["fixture://hello"], what="resources/updated")
            await c.unsubscribe_resource("fixture://hello")
            await c.call_tool("touch", {"uri": "fixture://hello"})
            await anyio.sleep(QUIET)
            assert updates == ["fixture://hello"], "resources/updated after unsubscribe"

    @staticmethod
    async def listen(bridge, mode):
        # The read timeout bounds the wait for the acknowledgment.
        async with connect(bridge, mode, read_timeout=5) as c:
            async with c.listen(resource_subscriptions=["fixture://hello"]) as sub:
                assert sub.honored.resource_subscriptions == ["fixture://hello"]
                assert text_of(await c.call_tool("touch", {"uri": "fixture://hello"})).startswith("touched")
                with anyio.fail_after(5):
                    event = await anext(sub)
                assert event == ResourceUpdated(uri="fixture://hello")
