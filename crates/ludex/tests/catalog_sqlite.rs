//! The catalog conformance suite against the embedded SQLite store.

use crate::conformance;

#[tokio::test]
async fn sqlite_keeps_the_catalog_contract() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("ludex.db").display());
    let stores = ludex::store::open(&url).await.unwrap();
    conformance::run_all(&stores, conformance::Listings::Everything).await;
}
