//! A typed change read off a DynamoDB stream: what every sink consumes.

use std::fmt;

use crate::{SeqNo, TenantId, Timestamp};

/// The kind of change, as DynamoDB Streams names it in `eventName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Insert,
    Modify,
    Remove,
}

impl Op {
    pub fn parse(event_name: &str) -> Option<Self> {
        match event_name {
            "INSERT" => Some(Op::Insert),
            "MODIFY" => Some(Op::Modify),
            "REMOVE" => Some(Op::Remove),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Op::Insert => "INSERT",
            Op::Modify => "MODIFY",
            Op::Remove => "REMOVE",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One decoded stream record. `new_image` is present for INSERT and MODIFY; `old_image`
/// for MODIFY and REMOVE when the stream carries old images and they decode.
#[derive(Debug, Clone, PartialEq)]
pub struct Change<T> {
    pub op: Op,
    pub tenant: TenantId,
    pub key: String,
    pub seq: SeqNo,
    pub event_time: Timestamp,
    pub new_image: Option<T>,
    pub old_image: Option<T>,
}

impl<T> Change<T> {
    /// The image that describes the item after this change, or before it for a REMOVE.
    pub fn latest_image(&self) -> Option<&T> {
        self.new_image.as_ref().or(self.old_image.as_ref())
    }
}
