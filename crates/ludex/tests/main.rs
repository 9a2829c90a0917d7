//! The integration tests of `ludex`, linked into one test binary: each file is a suite (a
//! module here), the folders hold what suites share. One binary instead of one per file saves
//! a link step and some 55 MB of disk per suite. One suite:
//! `cargo test -p ludex --test integration catalog_postgres::`.

#![allow(
    clippy::duplicate_mod,
    reason = "moto and fresh_postgres each include tests/skip, as benches and the Lambda tests use them alone"
)]

// What the suites share.
mod app;
mod conformance;
#[cfg(feature = "dynamodb")]
mod dynamo_requests;
#[cfg(feature = "postgres")]
mod fresh_postgres;
mod moto;
mod observed;

// The suites.
mod api;
mod bucket;
mod catalog_dynamodb;
mod catalog_postgres;
mod catalog_sqlite;
mod cli;
mod cli_aws;
#[cfg(feature = "postgres")]
mod faults;
mod ingest;
#[cfg(feature = "postgres")]
mod instances;
mod logs;
mod metrics;
mod s3_faults;
mod serve;
mod ui;
