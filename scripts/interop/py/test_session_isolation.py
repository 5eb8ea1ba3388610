"""The same flows with one child per session (--isolation session): what the bridge promises
must hold whatever serves a session."""

from mcp.client.streamable_http import streamable_http_client

from flows import Flows


class TestSessionIsolation(Flows):
    BRIDGE_ARGS = ("--isolation", "session")

    @staticmethod
    def transport(bridge):
        return streamable_http_client(bridge.url)
