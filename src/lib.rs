//! siem-relay: receive syslog and JSON events, keep them in a memory-mapped
//! ring on disk, and deliver them to several SIEMs at once, each at its own pace.
//!
//! The pipeline, by folder: [`sources`] → [`parse`] → [`event`] →
//! [`buffer`] → [`destinations`]; [`app`] wires them, [`config`] reads the
//! file, [`api`] serves the admin API.

// Module docs name the private parts they are built from; read them with
// `cargo doc --document-private-items`, where those links resolve.
#![allow(rustdoc::private_intra_doc_links)]

pub mod api;
pub mod app;
pub mod buffer;
pub mod config;
pub mod destinations;
pub mod event;
pub mod http_server;
pub mod parse;
pub mod sources;
