"""The client flows every transport must carry, written against the official Python SDK.

A test module subclasses `Flows` as `Test...` and sets `transport` (bridge -> async context
manager yielding the SDK's read and write streams). `connect` opens the SDK's high-level
`Client` in one of its era modes instead, for the era tests.
"""

import functools
import json
import time
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import httpx2
import pytest

import mcp.types as types
from mcp import Client
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

TEST_TIMEOUT = 30
QUIET = 0.3  # how long a notification that must NOT arrive is given to show up anyway
ROOTS = [{"uri": "file:///interop/root", "name": "interop root"}]


def bounded(fn):
    """Fails the test after TEST_TIMEOUT; an error the SDK's task groups wrapped alone in an
    exception group is raised as itself (so `xfail(raises=...)` and reports name it)."""

    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        with anyio.fail_after(TEST_TIMEOUT):
            try:
                return await fn(*args, **kwargs)
            except BaseExceptionGroup as group:
                leaf = group
                while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
                    leaf = leaf.exceptions[0]
                if leaf is group:
                    raise
                raise leaf from group

    return wrapper


def text_of(result: types.CallToolResult) -> str:
    assert not result.is_error, f"tool reported an error: {result}"
    return next(c.text for c in result.content if c.type == "text")


async def until(check, timeout=5.0, what="condition"):
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.01)


class WireLog:
    """The JSON-RPC messages one client POSTed, in order (an httpx2 request hook)."""

    def __init__(self):
        self.sent: list[dict] = []

    async def __call__(self, request: httpx2.Request) -> None:
        if request.method == "POST" and request.content:
            self.sent.append(json.loads(request.content))

    def request_ids(self, method: str) -> list:
        return [m["id"] for m in self.sent if m.get("method") == method and "id" in m]


@asynccontextmanager
async def connect(bridge, mode: str, wire: WireLog | None = None, read_timeout: float = 20, **callbacks):
    """The SDK's `Client` over Streamable HTTP in `mode` ("legacy", "auto" or a 2026 revision),
    optionally logging what it sends."""
    hooks = {"request": [wire]} if wire is not None else {}
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30, read=300), event_hooks=hooks) as http:
        transport = streamable_http_client(bridge.url, http_client=http)
        info = types.Implementation(name="interop-py", version="1.0.0")
        async with Client(transport, mode=mode, read_timeout_seconds=read_timeout, client_info=info, **callbacks) as c:
            yield c


@pytest.mark.anyio
class Flows:
    transport = None  # set by the subclass

    @asynccontextmanager
    async def session(self, bridge, **callbacks):
        async with self.transport(bridge) as streams:
            read, write = streams[0], streams[1]
            info = types.Implementation(name="interop-py", version="1.0.0")
            async with ClientSession(read, write, read_timeout_seconds=20, client_info=info, **callbacks) as s:
                s.init_result = await s.initialize()
                yield s

    @bounded
    async def test_handshake(self, bridge):
        async with self.session(bridge) as s:
            assert s.init_result.server_info.name
            caps = s.init_result.capabilities
            assert caps.tools and caps.resources and caps.prompts and caps.logging
            await s.send_ping()

    @bounded
    async def test_tools_list_and_call(self, bridge):
        async with self.session(bridge) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            assert {"echo", "add", "slow", "progress", "sample", "elicit", "roots", "log", "touch"} <= names
            assert text_of(await s.call_tool("echo", {"text": "hello bridge"})) == "hello bridge"
            assert text_of(await s.call_tool("add", {"a": 2, "b": 40})) == "42"

    @bounded
    async def test_progress_before_result(self, bridge):
        seen = []

        async def on_progress(progress, total, message):
            seen.append((progress, total))

        async with self.session(bridge) as s:
            result = await s.call_tool("progress", {"n": 5, "ms": 20}, progress_callback=on_progress)
            at_result = list(seen)
            assert text_of(result) == "progress done 5"
            assert at_result == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]

    @bounded
    async def test_sampling(self, bridge):
        asked = []

        async def sampling(context, params: types.CreateMessageRequestParams):
            asked.append(params)
            return types.CreateMessageResult(
                role="assistant", content=types.TextContent(type="text", text="sampled by py client"), model="interop-model"
            )

        async with self.session(bridge, sampling_callback=sampling) as s:
            assert text_of(await s.call_tool("sample", {"prompt": "What is 6 x 7?"})) == "sampled by py client"
            assert len(asked) == 1
            assert "What is 6 x 7?" in asked[0].model_dump_json()

    @bounded
    async def test_elicitation(self, bridge):
        asked = []

        async def elicitation(context, params: types.ElicitRequestParams):
            asked.append(params)
            return types.ElicitResult(action="accept", content={"name": "Ada"})

        async with self.session(bridge, elicitation_callback=elicitation) as s:
            reply = json.loads(text_of(await s.call_tool("elicit", {"message": "Who are you?"})))
            assert reply["action"] == "accept" and reply["content"] == {"name": "Ada"}
            assert asked[0].message == "Who are you?"
            assert asked[0].requested_schema["properties"]["name"]["type"] == "string"

    @bounded
    async def test_roots(self, bridge):
        async def list_roots(context):
            return types.ListRootsResult(roots=[types.Root(**r) for r in ROOTS])

        async with self.session(bridge, list_roots_callback=list_roots) as s:
            assert json.loads(text_of(await s.call_tool("roots", {})))["roots"] == ROOTS

    @bounded
    async def test_resources_and_subscriptions(self, bridge):
        updates = {"sub": [], "other": []}

        def collect(key):
            async def handler(message):
                if isinstance(message, types.ResourceUpdatedNotification):
                    updates[key].append(str(message.params.uri))

            return handler

        async with self.session(bridge, message_handler=collect("sub")) as sub, self.session(
            bridge, message_handler=collect("other")
        ) as other:
            assert "fixture://hello" in {str(r.uri) for r in (await sub.list_resources()).resources}
            assert (await sub.read_resource("fixture://hello")).contents[0].text == "hello from fixture"

            await sub.subscribe_resource("fixture://hello")
            assert text_of(await sub.call_tool("touch", {"uri": "fixture://hello"})) == "touched"
            await until(lambda: "fixture://hello" in updates["sub"], what="resources/updated at the subscriber")
            await anyio.sleep(QUIET)
            assert updates["other"] == [], "a session that did not subscribe got resources/updated"

            await sub.unsubscribe_resource("fixture://hello")
            updates["sub"].clear()
            assert text_of(await other.call_tool("touch", {"uri": "fixture://hello"})) == "touched"
            await anyio.sleep(QUIET)
            assert updates == {"sub": [], "other": []}, "resources/updated after unsubscribe"

    @bounded
    async def test_prompts(self, bridge):
        async with self.session(bridge) as s:
            greet = next(p for p in (await s.list_prompts()).prompts if p.name == "greet")
            assert any(a.name == "name" and a.required for a in greet.arguments or [])
            messages = (await s.get_prompt("greet", {"name": "Ada"})).messages
            assert messages[0].role == "user" and messages[0].content.text == "Hello, Ada!"

    @bounded
    async def test_logging_level(self, bridge):
        logs = []

        async def on_log(params: types.LoggingMessageNotificationParams):
            logs.append(params)

        async with self.session(bridge, logging_callback=on_log) as s:
            await s.set_logging_level("warning")
            sent = [("error", "e-1"), ("info", "i-1"), ("debug", "d-1"), ("warning", "w-1")]
            for level, message in sent:
                assert text_of(await s.call_tool("log", {"level": level, "message": message})) == "logged"
            await until(lambda: {"e-1", "w-1"} <= {l.data for l in logs}, what="error and warning logs")
            await anyio.sleep(QUIET)
            mine = sorted((l.level, l.data) for l in logs if l.data in {m for _, m in sent})
            assert mine == [("error", "e-1"), ("warning", "w-1")]
            assert all(l.logger == "fixture" for l in logs if l.data in {"e-1", "w-1"})

    @bounded
    async def test_cancellation(self, bridge):
        async with self.session(bridge) as s:
            started = time.monotonic()
            with anyio.move_on_after(0.2) as scope:
                await s.call_tool("slow", {"ms": 5000})
            assert scope.cancelled_caught, "the slow call finished before it was cancelled"
            assert time.monotonic() - started < 4
            assert text_of(await s.call_tool("slow", {"ms": 50})) == "slept 50"
            assert text_of(await s.call_tool("echo", {"text": "after cancel"})) == "after cancel"

    @bounded
    async def test_tools_list_changed(self, bridge):
        changed = []

        async def handler(message):
            if isinstance(message, types.ToolListChangedNotification):
                changed.append(message)

        async with self.session(bridge, message_handler=handler) as s:
            assert text_of(await s.call_tool("list_changed", {})) == "ok"
            await until(lambda: changed, what="notifications/tools/list_changed")

    @bounded
    async def test_concurrent_sessions(self, bridge):
        failures = []

        async def one_call(s, n, i):
            if i % 2 == 0:
                want, got = f"session {n} call {i}", text_of(await s.call_tool("echo", {"text": f"session {n} call {i}"}))
            else:
                want, got = str(n * 1000 + i), text_of(await s.call_tool("add", {"a": n * 1000, "b": i}))
            if want != got:
                failures.append((n, i, want, got))

        async with AsyncExitStack() as stack:
            sessions = [await stack.enter_async_context(self.session(bridge)) for _ in range(5)]
            async with anyio.create_task_group() as tg:
                for n, s in enumerate(sessions):
                    for i in range(20):
                        tg.start_soon(one_call, s, n, i)
        assert failures == []

    @bounded
    async def test_large_result(self, bridge):
        # The SDK refuses SSE events over 1 MiB by default (max_sse_event_size), so stay below it.
        async with self.session(bridge) as s:
            text = text_of(await s.call_tool("huge", {"bytes": 900_000}))
            assert len(text) == 900_000 and set(text) == {"x"}

    @bounded
    async def test_garbage_from_child(self, bridge):
        async with self.session(bridge) as s:
            assert text_of(await s.call_tool("garbage", {})) == "ok"
            assert text_of(await s.call_tool("stderr", {"line": "interop stderr line"})) == "ok"
            assert text_of(await s.call_tool("echo", {"text": "still fine"})) == "still fine"
