//! spectask: a self-hosted orchestrator for spec-driven, multi-session AI coding.
//! See ARCHITECTURE.md for the map of this crate.

pub mod agents;
pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod git;
pub mod mcp;
pub mod orchestrator;
pub mod store;
pub mod web;
