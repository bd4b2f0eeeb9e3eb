//! semdock: an on-premises container registry with container versioning.
//!
//! Layers, one way only: `http` → `domain` → `store` and `clients` → `model`. `server`
//! composes them and `cli` is the binary's front.

pub mod cli;
pub mod clients;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod model;
pub mod server;
pub mod store;
pub mod telemetry;
