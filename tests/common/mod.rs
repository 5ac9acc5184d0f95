#![allow(dead_code)]

/// Runs an `async fn(Backend)` test once per backend (`super::Backend` must be in
/// scope where it is used). `#[macro_use] mod common;` brings it in.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Sqlite).await }) +
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Backend::Postgres).await }) +
        }
    };
}

pub mod app;
pub mod db;
pub mod plan;
pub mod process;
pub mod spec;
