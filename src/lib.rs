//! spectask: a self-hosted orchestrator for spec-driven, multi-session AI coding.
//! See ARCHITECTURE.md for the map of this crate.

pub mod domain;
pub mod auth;
pub mod store;
pub mod api;
pub mod git;
pub mod app;
pub mod cli;
pub mod config;
