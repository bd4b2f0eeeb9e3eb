//! Webhook endpoints and their deliveries.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::webhooks;

/// How a payload is shaped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// semdock's JSON.
    #[default]
    Semdock,
    /// `CloudEvents` 1.0, structured mode (`application/cloudevents+json`).
    Cloudevents,
}

impl From<webhooks::Format> for Format {
    fn from(f: webhooks::Format) -> Self {
        match f {
            webhooks::Format::Semdock => Self::Semdock,
            webhooks::Format::Cloudevents => Self::Cloudevents,
        }
    }
}

impl From<Format> for webhooks::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Semdock => Self::Semdock,
            Format::Cloudevents => Self::Cloudevents,
        }
    }
}

/// An endpoint as the API shows it: the secret never again.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct EndpointInfo {
    pub id: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feed: Option<String>,
    /// Event names; empty means every event.
    pub events: Vec<String>,
    pub format: Format,
    pub active: bool,
    /// RFC 3339.
    pub created: String,
    pub created_by: String,
    /// The id of the last event handled (delivered, or given up on).
    pub cursor: u64,
    /// The secret, in the response that created the endpoint only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl From<webhooks::EndpointInfo> for EndpointInfo {
    fn from(e: webhooks::EndpointInfo) -> Self {
        Self {
            id: e.id,
            url: e.url,
            feed: e.feed,
            events: e.events,
            format: e.format.into(),
            active: e.active,
            created: e.created,
            created_by: e.created_by,
            cursor: e.cursor,
            secret: e.secret,
        }
    }
}

/// One delivery attempt's outcome, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// The event's id (its audit entry).
    pub event_id: u64,
    pub event: String,
    /// RFC 3339 of the last attempt.
    pub time: String,
    /// `delivered`, `retrying` (another attempt follows) or `failed` (no more).
    pub status: String,
    pub attempts: u32,
    /// The receiver's HTTP status, when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Sent again by an operator.
    #[serde(default)]
    pub redelivery: bool,
}

impl From<webhooks::Delivery> for Delivery {
    fn from(d: webhooks::Delivery) -> Self {
        Self {
            event_id: d.event_id,
            event: d.event,
            time: d.time,
            status: d.status,
            attempts: d.attempts,
            response_code: d.response_code,
            error: d.error,
            redelivery: d.redelivery,
        }
    }
}

/// A new endpoint, as asked for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    /// Generated when omitted (and returned once).
    pub secret: Option<String>,
    pub feed: Option<String>,
    /// Event names (`Added`, `TagMoved`, `VirtualTagMoved`, `Promoted`, `Deleted`, `Purged`,
    /// `RetentionDeleted`, `PushRefused`, `FeedSettingsChanged`); every event when empty.
    #[serde(default)]
    pub events: Vec<String>,
    #[serde(default)]
    pub format: Format,
}

impl From<NewEndpoint> for webhooks::NewEndpoint {
    fn from(n: NewEndpoint) -> Self {
        Self {
            url: n.url,
            secret: n.secret,
            feed: n.feed,
            events: n.events,
            format: n.format.into(),
        }
    }
}

/// A change of an endpoint; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub format: Option<Format>,
    pub active: Option<bool>,
}

impl From<EndpointChange> for webhooks::EndpointChange {
    fn from(c: EndpointChange) -> Self {
        Self {
            url: c.url,
            events: c.events,
            format: c.format.map(Into::into),
            active: c.active,
        }
    }
}
