#![allow(dead_code)]
pub mod app;
pub mod db;
pub mod plan;
pub mod spec;
