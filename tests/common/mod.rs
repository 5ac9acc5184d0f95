#![allow(dead_code)]
pub mod app;
pub mod db;
pub mod plan;
pub mod process;
pub mod spec;
