//! Counts the DynamoDB requests a client sends, by operation, and can make `BatchWriteItem`
//! calls answer that every item went unprocessed — the throttling answer moto never gives.
//! Used by the DynamoDB tests and by the DynamoDB ingest benchmark.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Clone, Debug, Default)]
pub struct Requests {
    sent: Arc<Mutex<BTreeMap<String, usize>>>,
    /// `BatchWriteItem` calls still to be answered "all unprocessed". The items were written;
    /// the store must send them again, and rewriting them is harmless.
    faults: Arc<AtomicUsize>,
}

/// The answer a faulty call gets instead of moto's, kept in the call's own config bag so that
/// concurrent calls do not mix theirs up.
#[derive(Debug)]
struct Unprocessed(Vec<u8>);

impl Storable for Unprocessed {
    type Storer = StoreReplace<Self>;
}

impl Requests {
    pub fn with_unprocessed_faults(faults: usize) -> Self {
        Self {
            faults: Arc::new(AtomicUsize::new(faults)),
            ..Self::default()
        }
    }

    /// A DynamoDB client for `endpoint` whose requests this counts.
    pub async fn client(&self, endpoint: &str) -> aws_sdk_dynamodb::Client {
        let config = ludex::aws::sdk_config(Some(endpoint)).await;
        aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(&config)
                .interceptor(self.clone())
                .build(),
        )
    }

    /// Requests sent for one operation (`BatchWriteItem`), retries included.
    pub fn count(&self, operation: &str) -> usize {
        self.all().get(operation).copied().unwrap_or(0)
    }

    /// Requests sent since `before` (an earlier [`Requests::all`]), by operation, leaving out
    /// operations with none.
    pub fn since(&self, before: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
        let mut spent = self.all();
        for (operation, n) in before {
            *spent.entry(operation.clone()).or_default() -= n;
        }
        spent.retain(|_, n| *n > 0);
        spent
    }

    /// Requests sent, by operation.
    pub fn all(&self) -> BTreeMap<String, usize> {
        self.sent.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

impl Intercept for Requests {
    fn name(&self) -> &'static str {
        "Requests"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Error> {
        let request = context.request();
        // The JSON protocol names the operation in a header: DynamoDB_20120810.GetItem.
        let Some(operation) = request
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
        else {
            return Ok(());
        };
        if let Ok(mut sent) = self.sent.lock() {
            *sent.entry(operation.to_owned()).or_default() += 1;
        }
        let fault = operation == "BatchWriteItem"
            && self
                .faults
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
                .is_ok();
        if fault {
            let sent: serde_json::Value =
                serde_json::from_slice(request.body().bytes().unwrap_or_default())?;
            let answer = serde_json::json!({"UnprocessedItems": sent["RequestItems"]});
            cfg.interceptor_state()
                .store_put(Unprocessed(serde_json::to_vec(&answer)?));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Error> {
        if let Some(Unprocessed(answer)) = cfg.load::<Unprocessed>() {
            let response = context.response_mut();
            response.headers_mut().remove("content-length");
            *response.body_mut() = SdkBody::from(answer.clone());
        }
        Ok(())
    }
}
