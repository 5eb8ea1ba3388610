//! Fronts: one per client era. A front checks what its era requires of a client message and
//! turns it into work for the child the client is bound to; `http/` only maps HTTP onto them.
//!
//! * `session`: the session era (revisions up to 2025-11-25): `initialize`, `Mcp-Session-Id`,
//!   server-to-client requests on the request's stream.
//! * `stateless`: revision 2026-07-28: no session, `_meta` on every request, a reply per POST.

pub mod request_state;
pub mod session;
pub mod stateless;
