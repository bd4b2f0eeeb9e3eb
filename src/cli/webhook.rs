//! `semdock webhook …`: endpoints, their deliveries and redeliveries.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::http::api::dto::{self, Delivery, EndpointInfo, Format, NewEndpoint};

pub(super) fn webhook(target: &Target, action: WebhookAction) -> anyhow::Result<()> {
    match action {
        WebhookAction::Create {
            url,
            feed,
            events,
            secret,
            cloudevents,
        } => {
            let new = NewEndpoint {
                url,
                secret,
                feed,
                events,
                format: if cloudevents {
                    Format::Cloudevents
                } else {
                    Format::Semdock
                },
            };
            let hook = to_json(&create(target, new)?)?;
            println!(
                "created webhook {} to {}; its secret is shown only now:\n{}",
                hook["id"].as_str().unwrap_or_default(),
                hook["url"].as_str().unwrap_or_default(),
                hook["secret"].as_str().unwrap_or_default()
            );
        }
        WebhookAction::List { feed } => {
            let rows: Vec<Vec<String>> = to_json(&list(target, feed.as_deref())?)?
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| {
                    let text = |f: &str| h[f].as_str().unwrap_or("-").to_owned();
                    let events: Vec<&str> = h["events"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.as_str())
                        .collect();
                    vec![
                        text("id"),
                        text("url"),
                        text("feed"),
                        if events.is_empty() {
                            "(all)".to_owned()
                        } else {
                            events.join(",")
                        },
                        text("format"),
                        h["cursor"].to_string(),
                    ]
                })
                .collect();
            print_table(&["ID", "URL", "FEED", "EVENTS", "FORMAT", "CURSOR"], &rows);
        }
        WebhookAction::Deliveries { id } => {
            let rows: Vec<Vec<String>> = to_json(&deliveries(target, &id)?)?
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    let text = |f: &str| d[f].as_str().unwrap_or("-").to_owned();
                    vec![
                        d["event_id"].to_string(),
                        text("event"),
                        text("time"),
                        text("status"),
                        d["response_code"]
                            .as_u64()
                            .map_or("-".into(), |c| c.to_string()),
                        d["attempts"].to_string(),
                        text("error"),
                    ]
                })
                .collect();
            print_table(
                &[
                    "EVENT", "KIND", "TIME", "STATUS", "CODE", "ATTEMPTS", "ERROR",
                ],
                &rows,
            );
        }
        WebhookAction::Redeliver { id, event } => {
            redeliver(target, &id, event)?;
            println!("event {event} is queued to be sent to webhook {id} again");
        }
        WebhookAction::Delete { id } => {
            delete(target, &id)?;
            println!("deleted webhook {id}");
        }
    }
    Ok(())
}

// The operations, each written once: the API's request, and the same through `Access`.

fn create(target: &Target, new: NewEndpoint) -> anyhow::Result<EndpointInfo> {
    let request = Request::send("POST", "/webhooks", &new);
    target.run(request, |a| Ok(a.create_webhook(&new.into())?.into()))
}

fn list(target: &Target, feed: Option<&str>) -> anyhow::Result<Vec<EndpointInfo>> {
    let path = match feed {
        Some(f) => format!("/webhooks?{}", serde_urlencoded::to_string([("feed", f)])?),
        None => "/webhooks".to_owned(),
    };
    target.run(Request::get(path), |a| Ok(dto::all(a.webhooks(feed)?)))
}

fn deliveries(target: &Target, id: &str) -> anyhow::Result<Vec<Delivery>> {
    let request = Request::get(format!("/webhooks/{id}/deliveries"));
    target.run(request, |a| Ok(dto::all(a.webhook(id)?.deliveries()?)))
}

fn redeliver(target: &Target, id: &str, event: u64) -> anyhow::Result<()> {
    let request = Request::post(format!("/webhooks/{id}/deliveries/{event}/redeliver"));
    target.run(request, |a| Ok(a.webhook(id)?.redeliver(event)?))
}

fn delete(target: &Target, id: &str) -> anyhow::Result<()> {
    target.run(Request::delete(format!("/webhooks/{id}")), |a| {
        Ok(a.webhook(id)?.delete()?)
    })
}
