"""The official Python SDK client over HTTP/2 with prior knowledge: httpx2 with the `h2` package,
an HTTP/2 implementation other than the bridge's. Every flow of the Streamable HTTP tests runs
over it, and every response must have come over HTTP/2."""

from contextlib import asynccontextmanager

import httpx2
from mcp.client.streamable_http import streamable_http_client

from flows import Flows


class TestStreamableHTTPOverHTTP2(Flows):
    @staticmethod
    @asynccontextmanager
    async def transport(bridge):
        versions = []

        async def seen(response: httpx2.Response) -> None:
            versions.append(response.http_version)

        timeout = httpx2.Timeout(30, read=300)
        async with httpx2.AsyncClient(http1=False, http2=True, timeout=timeout, event_hooks={"response": [seen]}) as http:
            async with streamable_http_client(bridge.url, http_client=http) as streams:
                yield streams
        assert versions, "no response was seen"
        assert set(versions) == {"HTTP/2"}, versions
