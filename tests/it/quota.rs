//! Storage quotas per feed: each blob counted once per feed; a push past the quota refused
//! with `DENIED` and the figures; GC giving the space back; exact under concurrent pushes
//! from many clients through two nodes; both engines.

use crate::common;

use std::time::Duration;

use actix_web::test::TestRequest;
use common::TestApp;
use common::cluster::Cluster;
use semdock::domain::maintenance::gc::GcOptions;
use semdock::model::Digest;

async fn usage(app: &TestApp) -> serde_json::Value {
    let res = app
        .send(TestRequest::get().uri("/api/v1/feeds/prod/quota"))
        .await;
    assert_eq!(res.status, 200);
    res.json()
}

/// A monolithic blob upload: the status and the error's code and sentence.
async fn upload(app: &TestApp, repo: &str, bytes: &[u8]) -> (u16, String) {
    let res = app
        .send(
            TestRequest::post()
                .uri(&format!(
                    "/v2/{repo}/blobs/uploads/?digest={}",
                    Digest::of(bytes)
                ))
                .insert_header(("Content-Type", "application/octet-stream"))
                .set_payload(bytes.to_vec()),
        )
        .await;
    if res.status == 201 {
        return (201, String::new());
    }
    let said = format!("{} {}", res.error_code(), res.error_message());
    (res.status, said)
}

async fn story(app: TestApp) {
    let app = app.with_feed("prod");
    let res = app
        .send(
            TestRequest::put()
                .uri("/api/v1/feeds/prod/quota")
                .insert_header(("Content-Type", "application/json"))
                .set_payload(r#"{"bytes": 5000}"#),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    let a = vec![b'a'; 3000];
    assert_eq!(upload(&app, "prod/one", &a).await.0, 201);
    // The same blob in another repository of the feed counts once.
    assert_eq!(upload(&app, "prod/two", &a).await.0, 201);
    let u = usage(&app).await;
    assert_eq!(
        (u["used_bytes"].as_u64(), u["blobs"].as_u64()),
        (Some(3000), Some(1)),
        "{u}"
    );
    // Past the quota: refused with the figures, nothing counted.
    let b = vec![b'b'; 2500];
    let (status, said) = upload(&app, "prod/one", &b).await;
    assert_eq!(status, 403, "{said}");
    assert!(said.starts_with("DENIED"), "{said}");
    assert!(
        said.contains("quota of 5000 bytes") && said.contains("holds 3000 bytes"),
        "{said}"
    );
    assert_eq!(usage(&app).await["used_bytes"], 3000);

    // Unlinking from one repository keeps it counted; from both, and GC, frees it.
    for repo in ["prod/one", "prod/two"] {
        let res = app
            .send(TestRequest::delete().uri(&format!("/v2/{repo}/blobs/{}", Digest::of(&a))))
            .await;
        assert_eq!(res.status, 202, "{}", String::from_utf8_lossy(&res.body));
    }
    assert_eq!(usage(&app).await["used_bytes"], 0);
    assert_eq!(upload(&app, "prod/one", &b).await.0, 201);
    // GC of a blob no manifest references gives its space back (once it is older than the
    // grace period: the clock moves on a second).
    app.registry.clock().advance(Duration::from_secs(2));
    let report = app
        .registry
        .maintenance()
        .gc(
            GcOptions {
                grace: Duration::ZERO,
                upload_expiry: Duration::from_hours(1),
                empty_upload_expiry: Duration::from_hours(1),
                dry_run: false,
            },
            &|_, _, _| {},
        )
        .unwrap();
    assert!(report.blobs_removed >= 1, "{report:?}");
    assert_eq!(usage(&app).await["used_bytes"], 0, "GC gave the space back");
    let res = app
        .send(
            TestRequest::put()
                .uri("/api/v1/feeds/prod/quota")
                .insert_header(("Content-Type", "application/json"))
                .set_payload(r#"{"bytes": null}"#),
        )
        .await;
    assert_eq!(res.json()["quota_bytes"], serde_json::Value::Null);
}

#[actix_web::test]
async fn a_quota_counts_each_blob_once_refuses_past_it_and_gc_gives_space_back_on_redb() {
    story(TestApp::new()).await;
}

#[actix_web::test]
async fn a_quota_counts_each_blob_once_refuses_past_it_and_gc_gives_space_back_on_postgresql() {
    story(TestApp::on_postgres()).await;
}

#[test]
fn clients_racing_through_two_nodes_for_the_last_bytes_never_overshoot() {
    let cluster = Cluster::start(2);
    let admin = common::http_as(Some(cluster.admin()));
    let bases: Vec<String> = cluster.nodes.iter().map(|n| n.url("")).collect();
    let res = admin
        .put(&format!("{}/api/v1/feeds/prod/quota", bases[0]))
        .header("Content-Type", "application/json")
        .send(r#"{"bytes": 4096}"#)
        .unwrap();
    assert_eq!(res.status(), 200);
    let pushes: Vec<_> = (0..12)
        .map(|i| {
            let (admin, base) = (admin.clone(), bases[i % 2].clone());
            std::thread::spawn(move || {
                let blob = vec![u8::try_from(i).unwrap(); 1024];
                admin
                    .post(&format!(
                        "{base}/v2/prod/race{}/blobs/uploads/?digest={}",
                        i % 3,
                        Digest::of(&blob)
                    ))
                    .header("Content-Type", "application/octet-stream")
                    .send(&blob[..])
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = pushes.into_iter().map(|t| t.join().unwrap()).collect();
    let accepted = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((accepted, refused), (4, 8), "{statuses:?}");
    for base in &bases {
        let mut res = admin
            .get(&format!("{base}/api/v1/feeds/prod/quota"))
            .call()
            .unwrap();
        let u: serde_json::Value =
            serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(u["used_bytes"], 4096, "{base}: {u}");
    }
}
