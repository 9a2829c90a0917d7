//! ludex: a game catalog service. This crate holds the ingest pipeline, the store and bucket
//! adapters, telemetry and the command line; the domain lives in `ludex-domain`.

pub mod api;
#[cfg(feature = "aws")]
pub mod aws;
pub mod bucket;
pub mod cli;
pub mod connections;
pub mod covers;
pub mod inbox;
pub mod ingest;
pub mod keys;
pub mod metrics;
pub mod preview;
pub mod revert;
pub mod serve;
pub mod settings;
pub mod store;
pub mod synthetic;
pub mod telemetry;
pub mod ui;
pub mod upload;
