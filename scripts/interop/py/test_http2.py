"""The official Python SDK client over HTTP/2 with prior knowledge: httpx2 with the `h2` package,
an HTTP/2 implementation other than the bridge's. Every flow of the Streamable HTTP and legacy
HTTP+SSE tests runs over it, and every response must have come over HTTP/2."""

from contextlib import asynccontextmanager

import httpx2
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from flows import Flows


def http2_only(versions: list, headers=None, timeout=None, auth=None) -> httpx2.AsyncClient:
    """An httpx2 client that speaks only HTTP/2 and notes each response's HTTP version."""

    async def seen(response: httpx2.Response) -> None:
        versions.append(response.http_version)

    kwargs = {"headers": headers} if headers is not None else {}
    if auth is not None:
        kwargs["auth"] = auth
    return httpx2.AsyncClient(
        http1=False,
        http2=True,
        timeout=timeout or httpx2.Timeout(30, read=300),
        event_hooks={"response": [seen]},
        **kwargs,
    )


@asynccontextmanager
async def all_over_http2(open_transport):
    versions = []
    async with open_transport(versions) as streams:
        yield streams
    assert versions, "no response was seen"
    assert set(versions) == {"HTTP/2"}, versions


class TestStreamableHTTPOverHTTP2(Flows):
    @staticmethod
    def transport(bridge):
        @asynccontextmanager
        async def open_transport(versions):
            async with http2_only(versions) as http:
                async with streamable_http_client(bridge.url, http_client=http) as streams:
                    yield streams

        return all_over_http2(open_transport)


class TestLegacySSEOverHTTP2(Flows):
    @staticmethod
    def transport(bridge):
        def open_transport(versions):
            def factory(headers=None, timeout=None, auth=None):
                return http2_only(versions, headers, timeout, auth)

            return sse_client(bridge.base_url + "/sse", httpx_client_factory=factory)

        return all_over_http2(open_transport)
