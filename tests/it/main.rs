//! The integration tests, one binary: each module is one area (its file says which), and
//! `common` holds the fixtures they share — `TestApp` in process, `Server` for the real
//! binary, the clusters, directories and clients. One binary links the library once instead
//! of once per area.

mod common;

mod api;
mod api_fuzz;
mod architecture;
mod auth;
mod authz_matrix;
mod backend;
mod blob_serving;
mod cli;
mod clients;
mod cluster;
mod conformance;
mod connector;
mod directory;
mod federation;
mod hygiene;
mod keyless;
mod maintenance;
mod notation;
mod oci_api;
mod paging;
mod quota;
mod release;
mod replication;
mod robots;
mod search;
mod security;
mod signatures;
mod sigstore;
mod tls;
mod ui;
mod ui_browser;
mod versioning;
mod versioning_model;
mod vulns;
mod wire;
