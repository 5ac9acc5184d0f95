//! The `tasks.md` parser and writer (being written).
