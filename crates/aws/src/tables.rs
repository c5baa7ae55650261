//! The two source tables in DynamoDB: created with streams on (for local stacks such as
//! docker-compose and for tests; on AWS the SAM template owns them), and written from a
//! recorded change history so the streams carry it to the CDC handlers.

use std::collections::HashMap;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_lambda_events::event::dynamodb::EventRecord;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
};

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("dynamodb table {table}: {reason}")]
    Request { table: String, reason: String },
    #[error("dynamodb table {0} did not become active within a minute")]
    NotActive(String),
    #[error("a {0} record without the keys or image it needs")]
    Incomplete(String),
}

fn request(table: &str, e: impl std::fmt::Display) -> TableError {
    TableError::Request {
        table: table.to_owned(),
        reason: e.to_string(),
    }
}

/// Creates `table` (partition key `tenant_id`, sort key `sort_key`, on demand, stream of
/// new and old images) unless it exists, and waits until it is active.
pub async fn ensure_table(
    shared: &SdkConfig,
    table: &str,
    sort_key: &str,
) -> Result<(), TableError> {
    let ddb = Client::new(shared);
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
    };
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewAndOldImages)
        .build();
    let created = ddb
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("tenant_id").map_err(|e| request(table, e))?)
        .attribute_definitions(attr(sort_key).map_err(|e| request(table, e))?)
        .key_schema(key("tenant_id", KeyType::Hash).map_err(|e| request(table, e))?)
        .key_schema(key(sort_key, KeyType::Range).map_err(|e| request(table, e))?)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(stream.map_err(|e| request(table, e))?)
        .send()
        .await;
    if let Err(e) = created {
        let exists = e
            .as_service_error()
            .is_some_and(|s| s.is_resource_in_use_exception());
        if !exists {
            return Err(request(
                table,
                aws_sdk_dynamodb::error::DisplayErrorContext(e),
            ));
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let described = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| request(table, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        let status = described.table().and_then(|t| t.table_status());
        if status == Some(&TableStatus::Active) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(TableError::NotActive(table.to_owned()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn sdk_item(item: serde_dynamo::Item) -> HashMap<String, AttributeValue> {
    item.into()
}

/// Writes recorded stream records to `table` as the application would have: INSERT and
/// MODIFY put the new image, REMOVE deletes the keys. Returns the number written.
pub async fn write_records(
    shared: &SdkConfig,
    table: &str,
    records: &[EventRecord],
) -> Result<usize, TableError> {
    let ddb = Client::new(shared);
    for record in records {
        let change = &record.change;
        match record.event_name.as_str() {
            "REMOVE" => {
                if change.keys.is_empty() {
                    return Err(TableError::Incomplete(record.event_name.clone()));
                }
                ddb.delete_item()
                    .table_name(table)
                    .set_key(Some(sdk_item(change.keys.clone())))
                    .send()
                    .await
                    .map_err(|e| request(table, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
            }
            name => {
                if change.new_image.is_empty() {
                    return Err(TableError::Incomplete(name.to_owned()));
                }
                ddb.put_item()
                    .table_name(table)
                    .set_item(Some(sdk_item(change.new_image.clone())))
                    .send()
                    .await
                    .map_err(|e| request(table, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
            }
        }
    }
    Ok(records.len())
}
