//! `semdock webhook …`: endpoints, their deliveries and redeliveries.

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn webhook(target: &Target, action: WebhookAction) -> anyhow::Result<()> {
    match action {
        WebhookAction::Create {
            url,
            feed,
            events,
            secret,
            cloudevents,
        } => {
            let new = crate::domain::webhooks::NewEndpoint {
                url,
                secret,
                feed,
                events,
                format: if cloudevents {
                    crate::domain::webhooks::Format::Cloudevents
                } else {
                    crate::domain::webhooks::Format::Semdock
                },
            };
            let hook = target.webhook_create(&new)?;
            println!(
                "created webhook {} to {}; its secret is shown only now:\n{}",
                hook["id"].as_str().unwrap_or_default(),
                hook["url"].as_str().unwrap_or_default(),
                hook["secret"].as_str().unwrap_or_default()
            );
        }
        WebhookAction::List { feed } => {
            let rows: Vec<Vec<String>> = target
                .webhook_list(feed.as_deref())?
                .iter()
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
            let rows: Vec<Vec<String>> = target
                .webhook_deliveries(&id)?
                .iter()
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
            target.webhook_redeliver(&id, event)?;
            println!("event {event} is queued to be sent to webhook {id} again");
        }
        WebhookAction::Delete { id } => {
            target.webhook_delete(&id)?;
            println!("deleted webhook {id}");
        }
    }
    Ok(())
}
