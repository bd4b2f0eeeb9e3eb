//! In-process tests of every Distribution API endpoint and its error paths.

use crate::common;

use actix_web::test::TestRequest;
use common::{OCI_INDEX, OCI_MANIFEST, TestApp};
use semdock::model::Digest;
use serde_json::json;

#[actix_web::test]
async fn base_endpoint_announces_the_api_version() {
    let app = TestApp::new();
    let res = app.get("/v2/").await;
    assert_eq!(res.status, 200);
    assert_eq!(
        res.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
}

#[actix_web::test]
async fn monolithic_upload_then_get_head_and_ranges() {
    let app = TestApp::new();
    let digest = app.push_blob("library/app", b"hello world").await;
    let uri = format!("/v2/library/app/blobs/{digest}");

    let res = app.get(&uri).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, b"hello world");
    assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(res.header("accept-ranges"), Some("bytes"));

    let res = app
        .send(
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri(&uri),
        )
        .await;
    // Content-Length of a HEAD is written by the wire encoder: checked in tests/it/wire.rs.
    assert_eq!(res.status, 200);
    assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));

    let res = app
        .send(
            TestRequest::get()
                .uri(&uri)
                .insert_header(("Range", "bytes=6-10")),
        )
        .await;
    assert_eq!(res.status, 206);
    assert_eq!(res.body, b"world");
    assert_eq!(res.header("content-range"), Some("bytes 6-10/11"));

    let res = app
        .send(
            TestRequest::get()
                .uri(&uri)
                .insert_header(("Range", "bytes=50-60")),
        )
        .await;
    assert_eq!(res.status, 416);
    assert_eq!(res.header("content-range"), Some("bytes */11"));
    for (range, body, content_range) in [
        ("bytes=-5", &b"world"[..], "bytes 6-10/11"),
        ("bytes=8-", &b"rld"[..], "bytes 8-10/11"),
        ("bytes=0-100", &b"hello world"[..], "bytes 0-10/11"),
    ] {
        let res = app
            .send(TestRequest::get().uri(&uri).insert_header(("Range", range)))
            .await;
        assert_eq!((res.status, res.body.as_slice()), (206, body), "{range}");
        assert_eq!(res.header("content-range"), Some(content_range), "{range}");
    }
    // Several ranges or a syntax this server ignores: the whole blob, as RFC 9110 allows.
    for range in ["bytes=0-1,3-4", "items=0-1"] {
        let res = app
            .send(TestRequest::get().uri(&uri).insert_header(("Range", range)))
            .await;
        assert_eq!(
            (res.status, res.body.as_slice()),
            (200, &b"hello world"[..]),
            "{range}"
        );
    }
}

#[actix_web::test]
async fn put_upload_with_body_and_no_patch() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    assert_eq!(res.status, 202);
    let location = res.header("location").unwrap().to_owned();
    assert!(res.header("docker-upload-uuid").is_some());
    assert_eq!(res.header("range"), Some("0-0"));
    let digest = Digest::of(b"monolithic");
    let res = app
        .send(
            TestRequest::put()
                .uri(&format!("{location}?digest={digest}"))
                .set_payload("monolithic"),
        )
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(
        res.header("location"),
        Some(format!("/v2/library/app/blobs/{digest}").as_str())
    );
    assert_eq!(
        app.get(&format!("/v2/library/app/blobs/{digest}"))
            .await
            .body,
        b"monolithic"
    );
}

#[actix_web::test]
async fn chunked_upload_keeps_order_and_reports_progress() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let location = res.header("location").unwrap().to_owned();

    let res = app
        .send(
            TestRequest::patch()
                .uri(&location)
                .insert_header(("Content-Range", "0-4"))
                .set_payload("abcde"),
        )
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(res.header("range"), Some("0-4"));

    // A chunk that does not start where the upload stands is refused, and says where it stands.
    let res = app
        .send(
            TestRequest::patch()
                .uri(&location)
                .insert_header(("Content-Range", "7-9"))
                .set_payload("xyz"),
        )
        .await;
    assert_eq!(res.status, 416);
    assert_eq!(res.header("range"), Some("0-4"));
    assert_eq!(res.error_code(), "BLOB_UPLOAD_INVALID");

    let res = app
        .send(TestRequest::patch().uri(&location).set_payload("fgh"))
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(res.header("range"), Some("0-7"));

    let res = app.get(&location).await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("range"), Some("0-7"));

    let digest = Digest::of(b"abcdefghij");
    let res = app
        .send(
            TestRequest::put()
                .uri(&format!("{location}?digest={digest}"))
                .insert_header(("Content-Range", "8-9"))
                .set_payload("ij"),
        )
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        app.get(&format!("/v2/library/app/blobs/{digest}"))
            .await
            .body,
        b"abcdefghij"
    );
    // The session is gone once completed.
    assert_eq!(app.get(&location).await.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[actix_web::test]
async fn chunked_upload_resumes_after_a_restart() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let location = res.header("location").unwrap().to_owned();
    let res = app
        .send(
            TestRequest::patch()
                .uri(&location)
                .set_payload("first half "),
        )
        .await;
    assert_eq!(res.status, 202);

    let app = app.restart();
    let res = app.get(&location).await;
    assert_eq!(res.header("range"), Some("0-10"));
    let res = app
        .send(
            TestRequest::patch()
                .uri(&location)
                .insert_header(("Content-Range", "11-21"))
                .set_payload("second half"),
        )
        .await;
    assert_eq!(res.status, 202, "{}", String::from_utf8_lossy(&res.body));
    let digest = Digest::of(b"first half second half");
    let res = app
        .send(TestRequest::put().uri(&format!("{location}?digest={digest}")))
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
}

#[actix_web::test]
async fn wrong_digest_publishes_nothing() {
    let app = TestApp::new();
    let claimed = Digest::of(b"something else");
    let res = app
        .send(
            TestRequest::post()
                .uri(&format!("/v2/library/app/blobs/uploads/?digest={claimed}"))
                .set_payload("actual"),
        )
        .await;
    assert_eq!(res.status, 400);
    assert_eq!(res.error_code(), "DIGEST_INVALID");
    assert!(res.error_message().contains(Digest::of(b"actual").as_str()));
    assert_eq!(
        app.get(&format!("/v2/library/app/blobs/{claimed}"))
            .await
            .status,
        404
    );
    let blob_files = walk(&app.dir.path().join("blobs"));
    assert!(blob_files.is_empty(), "{blob_files:?}");
    assert!(walk(&app.dir.path().join("uploads")).is_empty());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[actix_web::test]
async fn completing_without_digest_or_with_malformed_digest_is_a_400() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let location = res.header("location").unwrap().to_owned();
    let res = app.send(TestRequest::put().uri(&location)).await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    let res = app
        .send(TestRequest::put().uri(&format!("{location}?digest=sha256:nothex")))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    let res = app.get("/v2/library/app/blobs/sha256:123").await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    let res = app.get("/v2/library/app/blobs/md5:abc").await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
}

#[actix_web::test]
async fn unknown_and_malformed_upload_ids_are_upload_unknown() {
    let app = TestApp::new();
    for id in [
        "00000000-0000-0000-0000-000000000000",
        "not-a-uuid",
        "..%2F..%2Fmeta.redb",
    ] {
        let res = app
            .send(
                TestRequest::patch()
                    .uri(&format!("/v2/library/app/blobs/uploads/{id}"))
                    .set_payload("x"),
            )
            .await;
        assert_eq!(
            (res.status, res.error_code().as_str()),
            (404, "BLOB_UPLOAD_UNKNOWN"),
            "{id}"
        );
    }
}

#[actix_web::test]
async fn upload_of_another_repository_is_not_reachable() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/a/blobs/uploads/"))
        .await;
    let id = res.header("docker-upload-uuid").unwrap().to_owned();
    let res = app.get(&format!("/v2/library/b/blobs/uploads/{id}")).await;
    assert_eq!(res.status, 404);
}

#[actix_web::test]
async fn cancelled_upload_is_gone() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let location = res.header("location").unwrap().to_owned();
    app.send(TestRequest::patch().uri(&location).set_payload("partial"))
        .await;
    let res = app.send(TestRequest::delete().uri(&location)).await;
    assert_eq!(res.status, 204);
    assert_eq!(app.get(&location).await.status, 404);
    assert!(walk(&app.dir.path().join("uploads")).is_empty());
}

#[actix_web::test]
async fn upload_over_the_size_limit_is_refused() {
    let app = TestApp::new();
    let big = vec![7u8; usize::try_from(common::LIMITS.upload_bytes).unwrap() + 1];
    let res = app
        .send(
            TestRequest::post()
                .uri(&format!(
                    "/v2/library/app/blobs/uploads/?digest={}",
                    Digest::of(&big)
                ))
                .set_payload(big),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (413, "SIZE_INVALID")
    );
}

#[actix_web::test]
async fn malformed_content_range_is_refused() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/"))
        .await;
    let location = res.header("location").unwrap().to_owned();
    for range in ["abc", "5-2", "0-"] {
        let res = app
            .send(
                TestRequest::patch()
                    .uri(&location)
                    .insert_header(("Content-Range", range))
                    .set_payload("x"),
            )
            .await;
        assert_eq!(res.status, 416, "{range}");
    }
    let res = app
        .send(
            TestRequest::patch()
                .uri(&location)
                .insert_header(("Content-Range", "0-9"))
                .set_payload("short"),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "SIZE_INVALID")
    );
}

#[actix_web::test]
async fn blobs_are_readable_only_through_linked_repositories() {
    let app = TestApp::new().with_feed("prod");
    let digest = app.push_blob("library/a", b"secret layer").await;
    assert_eq!(
        app.get(&format!("/v2/library/b/blobs/{digest}"))
            .await
            .error_code(),
        "BLOB_UNKNOWN"
    );
    assert_eq!(
        app.get(&format!("/v2/prod/a/blobs/{digest}")).await.status,
        404
    );
}

#[actix_web::test]
async fn mount_links_a_blob_from_another_repository() {
    let app = TestApp::new();
    let digest = app.push_blob("library/a", b"shared layer").await;
    let res = app
        .send(TestRequest::post().uri(&format!(
            "/v2/library/b/blobs/uploads/?mount={digest}&from=library/a"
        )))
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        app.get(&format!("/v2/library/b/blobs/{digest}")).await.body,
        b"shared layer"
    );

    // From a repository that lacks it: a plain upload session instead.
    let res = app
        .send(TestRequest::post().uri(&format!(
            "/v2/library/c/blobs/uploads/?mount={digest}&from=library/nothing"
        )))
        .await;
    assert_eq!(res.status, 202);
    assert!(res.header("location").unwrap().contains("/blobs/uploads/"));
}

#[actix_web::test]
async fn duplicate_upload_keeps_one_file() {
    let app = TestApp::new();
    app.push_blob("library/a", b"same bytes").await;
    app.push_blob("library/b", b"same bytes").await;
    assert_eq!(walk(&app.dir.path().join("blobs")).len(), 1);
}

#[actix_web::test]
async fn deleting_a_blob_unlinks_it() {
    let app = TestApp::new();
    let digest = app.push_blob("library/a", b"to delete").await;
    let uri = format!("/v2/library/a/blobs/{digest}");
    assert_eq!(app.send(TestRequest::delete().uri(&uri)).await.status, 202);
    assert_eq!(app.get(&uri).await.status, 404);
    assert_eq!(
        app.send(TestRequest::delete().uri(&uri)).await.error_code(),
        "BLOB_UNKNOWN"
    );
}

#[actix_web::test]
async fn repository_without_feed_or_with_unknown_feed_is_name_unknown() {
    let app = TestApp::new();
    let res = app
        .send(TestRequest::post().uri("/v2/app/blobs/uploads/"))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );
    assert!(
        res.error_message()
            .contains("first path segment must be a feed"),
        "{}",
        res.error_message()
    );
    let res = app
        .send(TestRequest::post().uri("/v2/nosuchfeed/app/blobs/uploads/"))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );
    assert!(
        res.error_message()
            .contains("semdock feed create nosuchfeed")
    );
    let res = app
        .send(TestRequest::post().uri("/v2/library/Bad_Name!/blobs/uploads/"))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "NAME_INVALID")
    );
}

#[actix_web::test]
async fn manifest_push_pull_by_tag_and_digest() {
    let app = TestApp::new();
    let (digest, body) = app
        .push_image("library/app", "1.0.0", &[b"layer one"])
        .await;
    for reference in ["1.0.0", digest.as_str()] {
        let res = app
            .get(&format!("/v2/library/app/manifests/{reference}"))
            .await;
        assert_eq!(res.status, 200);
        assert_eq!(res.body, body);
        assert_eq!(res.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
        let head = app
            .send(
                TestRequest::default()
                    .method(actix_web::http::Method::HEAD)
                    .uri(&format!("/v2/library/app/manifests/{reference}")),
            )
            .await;
        assert_eq!(head.status, 200);
        assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    }
    let res = app.get("/v2/library/app/manifests/2.0.0").await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
}

/// A manifest read is served from memory until the next metadata write: a tag moved or
/// deleted right after a pull must show at once.
#[actix_web::test]
async fn a_pulled_tag_moved_or_deleted_shows_at_once() {
    let app = TestApp::new();
    let (first, _) = app.push_image("library/app", "stable", &[b"one"]).await;
    for _ in 0..2 {
        let res = app.get("/v2/library/app/manifests/stable").await;
        assert_eq!(res.header("docker-content-digest"), Some(first.as_str()));
    }
    let (second, body) = app.push_image("library/app", "stable", &[b"two"]).await;
    assert_ne!(first, second);
    let res = app.get("/v2/library/app/manifests/stable").await;
    assert_eq!(res.header("docker-content-digest"), Some(second.as_str()));
    assert_eq!(res.body, body);
    app.send(TestRequest::delete().uri("/v2/library/app/manifests/stable"))
        .await;
    assert_eq!(
        app.get("/v2/library/app/manifests/stable").await.status,
        404
    );
}

#[actix_web::test]
async fn manifest_put_returns_location_and_digest() {
    let app = TestApp::new();
    let config = app.push_blob("library/app", b"{}").await;
    let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 2},
        "layers": []})
    .to_string();
    let digest = Digest::of(body.as_bytes());
    let res = app
        .put_manifest("library/app", "v1", OCI_MANIFEST, body.as_bytes())
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        res.header("location"),
        Some(format!("/v2/library/app/manifests/{digest}").as_str())
    );
}

#[actix_web::test]
async fn manifest_referencing_missing_blob_is_refused() {
    let app = TestApp::new();
    let missing = Digest::of(b"never uploaded");
    let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": missing.as_str(), "size": 2},
        "layers": []})
    .to_string();
    let res = app
        .put_manifest("library/app", "1.0.0", OCI_MANIFEST, body.as_bytes())
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    assert!(res.error_message().contains(missing.as_str()));
    assert_eq!(app.get("/v2/library/app/manifests/1.0.0").await.status, 404);
}

#[actix_web::test]
async fn bad_manifests_get_precise_errors() {
    let app = TestApp::new();
    let (_, body) = app.push_image("library/app", "1.0.0", &[]).await;
    let docker = "application/vnd.docker.distribution.manifest.v2+json";
    let res = app.put_manifest("library/app", "x", docker, &body).await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    assert!(
        res.error_message()
            .contains("does not match the Content-Type")
    );

    let res = app
        .put_manifest(
            "library/app",
            "x",
            "application/json",
            br#"{"schemaVersion":1,"name":"a","tag":"b","fsLayers":[]}"#,
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
    assert!(res.error_message().contains("schema 1"));

    let res = app
        .put_manifest("library/app", "x", OCI_MANIFEST, b"not json")
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );

    let res = app
        .put_manifest("library/app", "bad+tag", OCI_MANIFEST, &body)
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );

    let wrong = Digest::of(b"other");
    let res = app
        .put_manifest("library/app", wrong.as_str(), OCI_MANIFEST, &body)
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );

    let huge = vec![b' '; usize::try_from(common::LIMITS.manifest_bytes).unwrap() + 1];
    let res = app
        .put_manifest("library/app", "x", OCI_MANIFEST, &huge)
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (413, "SIZE_INVALID")
    );
}

#[actix_web::test]
async fn index_requires_its_children_and_is_served_as_pushed() {
    let app = TestApp::new();
    let (child, child_body) = app
        .push_image("library/multi", "amd64-only", &[b"amd64 layer"])
        .await;
    let index = |d: &str| {
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": child_body.len(), "platform": {"architecture": "amd64", "os": "linux"}}
        ]})
        .to_string()
    };
    let missing = Digest::of(b"no such child");
    let res = app
        .put_manifest(
            "library/multi",
            "1.0.0",
            OCI_INDEX,
            index(missing.as_str()).as_bytes(),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_BLOB_UNKNOWN")
    );
    let body = index(child.as_str());
    let res = app
        .put_manifest("library/multi", "1.0.0", OCI_INDEX, body.as_bytes())
        .await;
    assert_eq!(res.status, 201);
    let res = app.get("/v2/library/multi/manifests/1.0.0").await;
    assert_eq!(res.header("content-type"), Some(OCI_INDEX));
    assert_eq!(res.body, body.as_bytes());
}

#[actix_web::test]
async fn deleting_a_tag_keeps_the_manifest_and_deleting_a_digest_removes_its_tags() {
    let app = TestApp::new();
    let (digest, _) = app.push_image("library/app", "1.0.0", &[]).await;
    app.send(TestRequest::put().uri(&format!("/v2/library/app/manifests/{digest}")))
        .await;
    let body = app.get("/v2/library/app/manifests/1.0.0").await.body;
    assert_eq!(
        app.put_manifest("library/app", "stable", OCI_MANIFEST, &body)
            .await
            .status,
        201
    );

    assert_eq!(
        app.send(TestRequest::delete().uri("/v2/library/app/manifests/stable"))
            .await
            .status,
        202
    );
    assert_eq!(
        app.get("/v2/library/app/manifests/stable").await.status,
        404
    );
    assert_eq!(
        app.get(&format!("/v2/library/app/manifests/{digest}"))
            .await
            .status,
        200
    );

    let res = app
        .send(TestRequest::delete().uri(&format!("/v2/library/app/manifests/{digest}")))
        .await;
    assert_eq!(res.status, 202);
    assert_eq!(app.get("/v2/library/app/manifests/1.0.0").await.status, 404);
    assert_eq!(
        app.get(&format!("/v2/library/app/manifests/{digest}"))
            .await
            .status,
        404
    );
    let tags = app.get("/v2/library/app/tags/list").await.json();
    assert_eq!(tags["tags"], json!([]));
    let res = app
        .send(TestRequest::delete().uri("/v2/library/app/manifests/stable"))
        .await;
    assert_eq!(res.error_code(), "MANIFEST_UNKNOWN");
}

#[actix_web::test]
async fn tag_list_is_sorted_and_paginated_with_link() {
    let app = TestApp::new();
    let (_, body) = app.push_image("library/app", "b", &[]).await;
    for tag in ["d", "a", "c"] {
        assert_eq!(
            app.put_manifest("library/app", tag, OCI_MANIFEST, &body)
                .await
                .status,
            201
        );
    }
    let all = app.get("/v2/library/app/tags/list").await.json();
    assert_eq!(
        all,
        json!({"name": "library/app", "tags": ["a", "b", "c", "d"]})
    );

    let res = app.get("/v2/library/app/tags/list?n=2").await;
    assert_eq!(res.json()["tags"], json!(["a", "b"]));
    assert_eq!(
        res.header("link"),
        Some("</v2/library/app/tags/list?n=2&last=b>; rel=\"next\"")
    );
    let res = app.get("/v2/library/app/tags/list?n=2&last=b").await;
    assert_eq!(res.json()["tags"], json!(["c", "d"]));
    assert_eq!(res.header("link"), None);
    assert_eq!(
        app.get("/v2/library/app/tags/list?n=0").await.json()["tags"],
        json!([])
    );

    let res = app.get("/v2/library/app/tags/list?n=abc").await;
    assert_eq!(res.status, 400);
    assert!(!res.error_code().is_empty());
    let res = app.get("/v2/library/none/tags/list").await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );
}

#[actix_web::test]
async fn catalog_is_sorted_and_paginated() {
    let app = TestApp::new().with_feed("prod");
    for repo in ["prod/z", "library/b", "library/a/nested"] {
        app.push_image(repo, "1.0.0", &[]).await;
    }
    let res = app.get("/v2/_catalog").await.json();
    assert_eq!(
        res["repositories"],
        json!(["library/a/nested", "library/b", "prod/z"])
    );
    let res = app.get("/v2/_catalog?n=1&last=library/a/nested").await;
    assert_eq!(res.json()["repositories"], json!(["library/b"]));
    assert_eq!(
        res.header("link"),
        Some("</v2/_catalog?n=1&last=library/b>; rel=\"next\"")
    );
}

#[actix_web::test]
async fn referrers_list_manifests_with_a_subject_and_filter_by_artifact_type() {
    let app = TestApp::new();
    let (subject, subject_body) = app.push_image("library/app", "1.0.0", &[b"app"]).await;
    let empty = app.push_blob("library/app", b"{}").await;
    let mut digests = Vec::new();
    for (artifact_type, payload) in [
        ("application/vnd.example.sbom", &b"sbom"[..]),
        ("application/vnd.example.sig", b"sig"),
    ] {
        let layer = app.push_blob("library/app", payload).await;
        let body = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.as_str(), "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer.as_str(), "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.as_str(), "size": subject_body.len()},
            "annotations": {"org.example.kind": artifact_type}})
        .to_string();
        let digest = Digest::of(body.as_bytes());
        let res = app
            .put_manifest(
                "library/app",
                digest.as_str(),
                OCI_MANIFEST,
                body.as_bytes(),
            )
            .await;
        assert_eq!(res.status, 201);
        assert_eq!(res.header("oci-subject"), Some(subject.as_str()));
        digests.push(digest);
    }
    let res = app
        .get(&format!("/v2/library/app/referrers/{subject}"))
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("content-type"), Some(OCI_INDEX));
    let index = res.json();
    assert_eq!(index["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);

    let res = app
        .get(&format!(
            "/v2/library/app/referrers/{subject}?artifactType=application/vnd.example.sig"
        ))
        .await;
    assert_eq!(res.header("oci-filters-applied"), Some("artifactType"));
    let manifests = res.json()["manifests"].clone();
    assert_eq!(manifests.as_array().unwrap().len(), 1);
    assert_eq!(manifests[0]["digest"], digests[1].as_str());
    assert_eq!(manifests[0]["artifactType"], "application/vnd.example.sig");
    assert_eq!(
        manifests[0]["annotations"]["org.example.kind"],
        "application/vnd.example.sig"
    );

    // Deleting a referrer removes it from the list; an unknown subject lists nothing.
    app.send(TestRequest::delete().uri(&format!("/v2/library/app/manifests/{}", digests[1])))
        .await;
    let res = app
        .get(&format!("/v2/library/app/referrers/{subject}"))
        .await
        .json();
    assert_eq!(res["manifests"].as_array().unwrap().len(), 1);
    let res = app
        .get(&format!("/v2/library/app/referrers/{}", Digest::of(b"x")))
        .await
        .json();
    assert_eq!(res["manifests"], json!([]));
    assert_eq!(
        app.get("/v2/library/app/referrers/sha256:zz").await.status,
        400
    );
}

#[actix_web::test]
async fn unknown_endpoints_and_methods_answer_in_the_error_envelope() {
    let app = TestApp::new();
    let res = app.get("/v2/library/app/nothing/here").await;
    assert_eq!(res.status, 404);
    assert_eq!(res.error_code(), "UNSUPPORTED");
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/manifests/1.0.0"))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (405, "UNSUPPORTED")
    );
}

#[actix_web::test]
async fn docker_schema2_manifest_and_manifest_list_are_stored_with_their_media_types() {
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    let app = TestApp::new();
    let config = app
        .push_blob("library/legacy", br#"{"architecture":"amd64"}"#)
        .await;
    let layer = app.push_blob("library/legacy", b"gzip bytes").await;
    let manifest = json!({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config.as_str(), "size": 24},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.as_str(), "size": 10}]})
    .to_string();
    let digest = Digest::of(manifest.as_bytes());
    assert_eq!(
        app.put_manifest(
            "library/legacy",
            digest.as_str(),
            DOCKER_MANIFEST,
            manifest.as_bytes()
        )
        .await
        .status,
        201
    );
    let list = json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [
        {"mediaType": DOCKER_MANIFEST, "digest": digest.as_str(), "size": manifest.len(), "platform": {"architecture": "amd64", "os": "linux"}}]})
    .to_string();
    assert_eq!(
        app.put_manifest("library/legacy", "1.0.0", DOCKER_LIST, list.as_bytes())
            .await
            .status,
        201
    );
    let res = app.get("/v2/library/legacy/manifests/1.0.0").await;
    assert_eq!(res.header("content-type"), Some(DOCKER_LIST));
    let res = app
        .get(&format!("/v2/library/legacy/manifests/{digest}"))
        .await;
    assert_eq!(res.header("content-type"), Some(DOCKER_MANIFEST));
}

// ---- conformance with every toggle (distribution-spec main) ----

#[actix_web::test]
async fn a_reference_that_cannot_be_a_tag_is_an_unknown_manifest_for_get_and_head_only() {
    let app = TestApp::new();
    for method in [actix_web::http::Method::GET, actix_web::http::Method::HEAD] {
        let res = app
            .send(
                TestRequest::default()
                    .method(method.clone())
                    .uri("/v2/library/app/manifests/.INVALID_MANIFEST_NAME"),
            )
            .await;
        assert_eq!(res.status, 404, "{method}");
    }
    let res = app
        .get("/v2/library/app/manifests/.INVALID_MANIFEST_NAME")
        .await;
    assert_eq!(res.error_code(), "MANIFEST_UNKNOWN");
    let (_, body) = app.image("library/app", &[b"x"]).await;
    let res = app
        .put_manifest("library/app", ".INVALID_MANIFEST_NAME", OCI_MANIFEST, &body)
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "MANIFEST_INVALID")
    );
}

#[actix_web::test]
async fn a_range_whose_end_is_before_its_start_is_unsatisfiable() {
    let app = TestApp::new();
    let digest = app.push_blob("library/app", b"hello world").await;
    let res = app
        .send(
            TestRequest::get()
                .uri(&format!("/v2/library/app/blobs/{digest}"))
                .insert_header(("Range", "bytes=5-0")),
        )
        .await;
    assert_eq!(res.status, 416);
    assert_eq!(res.header("content-range"), Some("bytes */11"));
}

#[actix_web::test]
async fn automatic_mount_links_a_blob_the_caller_may_read_and_hides_one_it_may_not() {
    let app = TestApp::new().with_feed("secret");
    let readable = app.push_blob("library/a", b"readable layer").await;
    let hidden = app.push_blob("secret/a", b"hidden layer").await;
    let res = app
        .send(TestRequest::post().uri(&format!("/v2/library/b/blobs/uploads/?mount={readable}")))
        .await;
    assert_eq!(res.status, 201);
    assert_eq!(res.header("docker-content-digest"), Some(readable.as_str()));
    assert_eq!(
        app.get(&format!("/v2/library/b/blobs/{readable}"))
            .await
            .body,
        b"readable layer"
    );
    // A user who may push to library but not read secret gets an upload session instead.
    app.auth
        .users()
        .create(&common::admin(), "pusher", Some("pusher-password"), false)
        .unwrap();
    app.auth
        .users()
        .grant(&common::admin(), "pusher", "library", Some("push"))
        .unwrap();
    let res = app
        .send_as(
            TestRequest::post()
                .uri(&format!("/v2/library/c/blobs/uploads/?mount={hidden}"))
                .insert_header(("Authorization", common::basic("pusher", "pusher-password"))),
        )
        .await;
    assert_eq!(res.status, 202, "a blob of an unreadable feed was mounted");
}

/// Runs the integrity check, which must find nothing wrong.
fn check_clean(app: &TestApp) -> semdock::domain::maintenance::check::CheckReport {
    let opts = semdock::domain::maintenance::check::CheckOptions {
        jobs: 1,
        max_bytes_per_sec: None,
    };
    let check = app
        .registry
        .maintenance()
        .check(opts, &|_, _, _| {})
        .unwrap();
    assert!(check.is_clean(), "{check:?}");
    check
}

fn sha512_of(bytes: &[u8]) -> Digest {
    Digest::of_with(semdock::model::Algorithm::Sha512, bytes)
}

#[actix_web::test]
async fn sha512_blobs_upload_monolithic_chunked_and_by_any_route_and_read_back() {
    let app = TestApp::new();
    let bytes = b"a layer addressed by sha512".to_vec();
    let digest = sha512_of(&bytes);
    // Single POST.
    let res = app
        .send(
            TestRequest::post()
                .uri(&format!("/v2/library/app/blobs/uploads/?digest={digest}"))
                .set_payload(bytes.clone()),
        )
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
    let res = app.get(&format!("/v2/library/app/blobs/{digest}")).await;
    assert_eq!(res.body, bytes);
    assert_eq!(res.header("docker-content-digest"), Some(digest.as_str()));
    let file = app
        .dir
        .path()
        .join("blobs/sha512")
        .join(&digest.hex()[..2])
        .join(digest.hex());
    assert!(file.is_file(), "{}", file.display());
    // Chunked, announced with digest-algorithm (hashed while streaming), and not announced
    // (one more pass at the end): both land on the same digest.
    for start in [
        "/v2/library/chunked/blobs/uploads/?digest-algorithm=sha512",
        "/v2/library/late/blobs/uploads/",
    ] {
        let res = app.send(TestRequest::post().uri(start)).await;
        assert_eq!(res.status, 202);
        let location = res.header("location").unwrap().to_owned();
        let res = app
            .send(
                TestRequest::patch()
                    .uri(&location)
                    .insert_header(("Content-Range", "0-9"))
                    .set_payload(bytes[..10].to_vec()),
            )
            .await;
        assert_eq!(res.status, 202);
        let location = res.header("location").unwrap().to_owned();
        let sep = if location.contains('?') { '&' } else { '?' };
        let res = app
            .send(
                TestRequest::put()
                    .uri(&format!("{location}{sep}digest={digest}"))
                    .set_payload(bytes[10..].to_vec()),
            )
            .await;
        assert_eq!(
            res.status,
            201,
            "{start}: {}",
            String::from_utf8_lossy(&res.body)
        );
    }
    let res = app
        .send(TestRequest::post().uri("/v2/library/app/blobs/uploads/?digest-algorithm=md5"))
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
    // A wrong sha512 is refused and leaves nothing.
    let wrong = sha512_of(b"other");
    let res = app
        .send(
            TestRequest::post()
                .uri(&format!("/v2/library/app/blobs/uploads/?digest={wrong}"))
                .set_payload(bytes.clone()),
        )
        .await;
    assert_eq!(
        (res.status, res.error_code().as_str()),
        (400, "DIGEST_INVALID")
    );
}

#[actix_web::test]
async fn manifests_address_and_reference_sha512_content_through_gc_check_backup_and_restore() {
    let app = TestApp::new();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"sha512 layer";
    let (c, l) = (sha512_of(config), sha512_of(layer));
    for (d, b) in [(&c, &config[..]), (&l, &layer[..])] {
        let res = app
            .send(
                TestRequest::post()
                    .uri(&format!("/v2/library/app/blobs/uploads/?digest={d}"))
                    .set_payload(b.to_vec()),
            )
            .await;
        assert_eq!(res.status, 201);
    }
    let body = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": c.as_str(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": l.as_str(), "size": layer.len()}]}))
    .unwrap();
    let by_sha512 = sha512_of(&body);
    let res = app
        .put_manifest("library/app", by_sha512.as_str(), OCI_MANIFEST, &body)
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(
        res.header("docker-content-digest"),
        Some(by_sha512.as_str())
    );
    let res = app
        .put_manifest("library/app", "1", OCI_MANIFEST, &body)
        .await;
    assert_eq!(res.status, 201);
    let res = app
        .get(&format!("/v2/library/app/manifests/{by_sha512}"))
        .await;
    assert_eq!((res.status, res.body.clone()), (200, body.clone()));
    let res = app.get("/v2/library/app/manifests/1").await;
    assert_eq!(
        res.header("docker-content-digest"),
        Some(Digest::of(&body).as_str())
    );

    // GC keeps what the manifests reference; check re-hashes sha512 files and finds all well.
    let mut opts = semdock::config::Config::default().gc_options(false);
    opts.grace = std::time::Duration::ZERO;
    let report = app.registry.maintenance().gc(opts, &|_, _, _| {}).unwrap();
    assert_eq!(report.blobs_removed, 0, "{report:?}");
    assert_eq!(check_clean(&app).blobs_checked, 2);
    // Backup and restore carry them, verified.
    let dirs = tempfile::tempdir().unwrap();
    let backup = dirs.path().join("b");
    let made = app
        .registry
        .maintenance()
        .backup(&backup, &|_, _, _| {})
        .unwrap();
    assert_eq!((made.blobs, made.damaged.len()), (2, 0));
    let restored = dirs.path().join("r");
    let back =
        semdock::domain::maintenance::backup::restore(&backup, &restored, &|_, _, _| {}).unwrap();
    assert_eq!((back.blobs, back.damaged.len()), (2, 0));
    assert!(
        restored
            .join("blobs/sha512")
            .join(&l.hex()[..2])
            .join(l.hex())
            .is_file()
    );
    // Once unreferenced, GC collects a sha512 blob like any other.
    let res = app
        .send(
            TestRequest::delete().uri(&format!("/v2/library/app/manifests/{}", Digest::of(&body))),
        )
        .await;
    assert_eq!(res.status, 202);
    let res = app
        .send(TestRequest::delete().uri(&format!("/v2/library/app/manifests/{by_sha512}")))
        .await;
    assert_eq!(res.status, 202);
    // Records and links count as young within their second.
    app.registry
        .clock()
        .advance(std::time::Duration::from_millis(1100));
    let report = app.registry.maintenance().gc(opts, &|_, _, _| {}).unwrap();
    assert_eq!(report.blobs_removed, 2, "{report:?}");
}

#[actix_web::test]
async fn a_manifest_with_non_distributable_layers_needs_only_its_distributable_blobs() {
    let app = TestApp::new().with_feed("prod");
    let config = app.push_blob("library/win", br#"{"os":"windows"}"#).await;
    let layer = app.push_blob("library/win", b"distributable").await;
    let foreign = Digest::of(b"never pushed: fetched from its urls");
    let body = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.as_str(), "size": 16},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": foreign.as_str(), "size": 123_456,
             "urls": ["https://mcr.example.com/blobs/x"]},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer.as_str(), "size": 13}]}))
    .unwrap();
    let res = app
        .put_manifest("library/win", "ltsc", OCI_MANIFEST, &body)
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    // The foreign layer is external, not missing: check is clean, promotion links only the rest.
    check_clean(&app);
    let res = app
        .send(
            TestRequest::post()
                .uri("/api/v1/promotions")
                .set_json(json!({"from": "library/win:ltsc", "to": "prod/win:ltsc"})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", String::from_utf8_lossy(&res.body));
    assert_eq!(app.get("/v2/prod/win/manifests/ltsc").await.body, body);
    assert_eq!(
        app.get(&format!("/v2/prod/win/blobs/{foreign}"))
            .await
            .status,
        404
    );
}
