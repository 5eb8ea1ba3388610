//! The one integration-test crate. Most tests run the bridge in-process on 127.0.0.1:0 in front
//! of the fixture server (`tests/fixtures/fake_mcp_server.rs`); `cli` drives the built binary.

mod support;

/// `--child-concurrency`: the cap, the bounded fair queue, its refusals.
mod child_concurrency;
/// Black-box: the binary's flags, URL line, exit codes and signals.
mod cli;
/// Black-box: `--config FILE` and SIGHUP.
mod cli_config;
/// Slow, idle and surplus connections: header timeout, idle timeout, connection cap.
mod connections;
/// Both eras on one endpoint: session and stateless clients, legacy and modern children.
mod eras;
/// Hardening: unusable initialize results, limits under a burst, request timeouts, server
/// requests that wait for their session's stream, nothing crossing users on a shared child.
mod hardening;
/// Hostile input (property tests) at the HTTP side and on the child's stdout.
mod hostile;
/// HTTP/2 (prior knowledge): every transport multiplexed on one connection, `:authority`.
mod http2;
/// Several instances: ids that name their instance, the drain at shutdown.
mod instances;
/// Legacy HTTP+SSE: endpoint event, message POSTs, replies on the stream, both transports.
mod legacy_sse;
/// Child failures: crash, garbage, over-long lines, silent or missing servers.
mod lifecycle;
/// Prometheus metrics after a known workload.
mod metrics;
/// The 2026-07-28 fixture alone over stdio: discover, refusals, input required, listen, cancel.
mod modern_fixture;
/// Many sessions on one child: colliding ids, progress, cancellation, server requests.
mod multiplex;
/// OAuth: metadata, challenges, token checks, key rotation, subject-owned sessions,
/// `--isolation user` with `--claim-env`, against an authorization server of the test's own.
mod oauth;
/// `Mcp-Param-*` headers held to the tool arguments they mirror.
mod param_headers;
/// A first `GET` served without hyper: stream framing, hand-over, a client that leaves.
mod plain_http;
/// `/ready` and `/health`, per server.
mod probes;
/// Host and Origin checks, CORS, bearer tokens, limits.
mod security;
/// Named servers from a configuration file, reloads.
mod servers;
/// Streamable HTTP: handshake, reply modes, status codes, sessions, bad input.
mod streamable;
/// Child supervision: restarts, give-up, session isolation, pools, header-env.
mod supervision;
/// Tool filters in both eras and both transports.
mod tool_filter;
