//! Counts the DynamoDB requests a client sends, by operation, and can make `BatchWriteItem`
//! calls answer that every item went unprocessed, and any operation answer
//! `ProvisionedThroughputExceededException` — the throttling answers moto never gives.
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
    /// Requests of an operation still to be throttled. A throttled request never reaches the
    /// table (it is sent as a harmless `ListTables`), as with DynamoDB's own throttling.
    throttled: Arc<Mutex<BTreeMap<String, usize>>>,
}

/// The operation of this attempt when it gets the throttling answer instead of moto's (set
/// on every attempt: the SDK's retries of one call share its config bag).
#[derive(Debug)]
struct Throttled(Option<String>);

impl Storable for Throttled {
    type Storer = StoreReplace<Self>;
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

    /// Throttles the next `count` requests of `operation` (`PutItem`, `Query`, …).
    #[allow(dead_code, reason = "the benchmark throttles nothing")]
    pub fn throttle(&self, operation: &str, count: usize) {
        if let Ok(mut throttled) = self.throttled.lock() {
            throttled.insert(operation.to_owned(), count);
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
        // The JSON protocol names the operation in a header: DynamoDB_20120810.GetItem. A
        // throttled attempt was rewritten (`modify_before_transmit` runs first): count what it was.
        let throttled = match cfg.load::<Throttled>() {
            Some(Throttled(Some(operation))) => Some(operation.clone()),
            _ => None,
        };
        let Some(operation) = throttled.as_deref().or_else(|| {
            request
                .headers()
                .get("x-amz-target")
                .and_then(|t| t.rsplit('.').next())
        }) else {
            return Ok(());
        };
        if let Ok(mut sent) = self.sent.lock() {
            *sent.entry(operation.to_owned()).or_default() += 1;
        }
        if throttled.is_some() {
            return Ok(());
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

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Error> {
        let operation = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or_default()
            .to_owned();
        let throttle = self.throttled.lock().is_ok_and(|mut throttled| {
            throttled
                .get_mut(&operation)
                .is_some_and(|left| match left.checked_sub(1) {
                    Some(after) => {
                        *left = after;
                        true
                    }
                    None => false,
                })
        });
        cfg.interceptor_state()
            .store_put(Throttled(throttle.then_some(operation)));
        if throttle {
            let request = context.request_mut();
            request
                .headers_mut()
                .insert("x-amz-target", "DynamoDB_20120810.ListTables");
            request.headers_mut().insert("content-length", "2");
            *request.body_mut() = SdkBody::from("{}");
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), Error> {
        if matches!(cfg.load::<Throttled>(), Some(Throttled(Some(_)))) {
            let response = context.response_mut();
            *response.status_mut() = 400.try_into()?;
            response.headers_mut().remove("content-length");
            *response.body_mut() = SdkBody::from(
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
            );
            return Ok(());
        }
        if let Some(Unprocessed(answer)) = cfg.load::<Unprocessed>() {
            let response = context.response_mut();
            response.headers_mut().remove("content-length");
            *response.body_mut() = SdkBody::from(answer.clone());
        }
        Ok(())
    }
}
