//! The integration tests of the Lambda functions, linked into one test binary (each file a
//! suite): `aws_path` runs the handlers in process on the AWS path, `emulator` runs the packaged
//! binaries under cargo-lambda's runtime emulator.

// Both server finders include the small module that prints the skip banner.
#![allow(
    clippy::duplicate_mod,
    reason = "moto and fresh_postgres each include tests/skip"
)]

#[path = "../../ludex/tests/fresh_postgres/mod.rs"]
mod fresh_postgres;
#[path = "../../ludex/tests/moto/mod.rs"]
mod moto;

mod aws_path;
mod emulator;
