//! Gatehouse for MCP, an adapter over `gatehouse-app` like the HTTP API:
//!
//! - [`server::GatehouseServer`]: Gatehouse's own tools (`request_approval`,
//!   `get_decision`, `wait_for_decision`, `redeem_token`, `report_execution`,
//!   `report_outcome`, and for reviewers `list_pending` and `review`), served
//!   at `/mcp` on the main server ([`http`]) or on stdio by
//!   `gatehouse mcp serve`.
//! - [`proxy`]: a gating proxy in front of any MCP server, which turns every
//!   `tools/call` into a decision and forwards only what is allowed or
//!   approved, with exactly the approved arguments.

pub mod gate;
pub mod http;
pub mod local;
pub mod proxy;
pub mod remote;
pub mod schema;
pub mod server;
pub mod tools;

pub use gate::ToolError;
pub use remote::RemoteGate;
pub use server::GatehouseServer;
