//! The `requirements.md` parser and EARS classifier (being written).
