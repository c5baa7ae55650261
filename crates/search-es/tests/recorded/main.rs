//! The engine against recorded Elasticsearch 8 responses on a local scripted server:
//! what it sends, and how it reads each kind of answer. One test binary, a module per
//! area.
#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;
mod purge;
mod reads;
mod rebuild;
mod snapshots;
mod steps;
mod tls;
mod unavailable;
mod writes;
