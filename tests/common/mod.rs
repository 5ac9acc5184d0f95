#![allow(dead_code)]
pub mod app;
pub mod db;
pub mod spec;
