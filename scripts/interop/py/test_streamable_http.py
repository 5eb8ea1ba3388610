"""The official Python SDK client against the bridge's Streamable HTTP endpoint (/mcp)."""

from mcp.client.streamable_http import streamable_http_client

from flows import Flows


class TestStreamableHTTP(Flows):
    @staticmethod
    def transport(bridge):
        return streamable_http_client(bridge.url)
