//! Agents over the Agent Client Protocol.
pub mod check;
pub mod confine;
pub mod host;
pub mod manager;
pub mod profile;
pub mod protocol;
pub mod rpc;
pub mod runtime;
pub mod sample;
pub mod sandbox;
pub mod terminals;
