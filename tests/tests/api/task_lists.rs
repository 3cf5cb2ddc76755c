//! Listing tasks: filters, every sort order, and keyset pages that never skip or repeat.

use actix_web::http::StatusCode;
use keystone_tests::{Account, TestApp, spawn_app};
use serde_json::{Value, json};

/// Follows `next_cursor` to the end and returns the titles in order.
async fn all_pages(app: &TestApp, account: &Account, query: &str) -> Vec<String> {
    let mut titles = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..50 {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/tasks?{query}&limit=2&cursor={cursor}"),
            None => format!("/api/v1/tasks?{query}&limit=2"),
        };
        let page = app.get(&path, &account.access_token).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        titles.extend(
            items
                .iter()
                .map(|t| t["title"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return titles,
        }
    }
    panic!("pagination did not end");
}

async fn seed(app: &TestApp, admin: &Account) {
    for (title, priority, due) in [
        ("a", "low", Some("2026-12-03")),
        ("b", "urgent", None),
        ("c", "medium", Some("2026-12-01")),
        ("d", "urgent", Some("2026-12-01")),
        ("e", "low", None),
        ("f", "high", Some("2026-12-02")),
        ("g", "medium", Some("2026-12-03")),
    ] {
        let mut body = json!({"title": title, "priority": priority});
        if let Some(due) = due {
            body["due_date"] = Value::from(due);
        }
        app.create_task(admin, &body).await;
    }
}

#[actix_web::test]
async fn every_sort_order_pages_through_every_task_exactly_once_in_order() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    seed(&app, &admin).await;
    let cases: [(&str, &[&str]); 6] = [
        ("sort=created_at", &["a", "b", "c", "d", "e", "f", "g"]),
        ("sort=-created_at", &["g", "f", "e", "d", "c", "b", "a"]),
        // Ties break on the id (creation order), in the same direction.
        ("sort=priority", &["a", "e", "c", "g", "f", "b", "d"]),
        ("sort=-priority", &["d", "b", "f", "g", "c", "e", "a"]),
        // No due date: last when ascending, first when descending.
        ("sort=due_date", &["c", "d", "f", "a", "g", "b", "e"]),
        ("sort=-due_date", &["e", "b", "g", "a", "f", "d", "c"]),
    ];
    for (query, expected) in cases {
        assert_eq!(all_pages(&app, &admin, query).await, expected, "{query}");
    }
}

#[actix_web::test]
async fn the_default_order_is_newest_first() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    seed(&app, &admin).await;
    let page = app.get("/api/v1/tasks?limit=1", &admin.access_token).await;
    assert_eq!(page.body["items"][0]["title"], "g");
}

#[actix_web::test]
async fn filters_narrow_the_list() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    seed(&app, &admin).await;
    let token = admin.access_token.as_str();
    let list = app
        .get("/api/v1/tasks?sort=created_at&limit=100", token)
        .await;
    let ids: Vec<String> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    app.request(
        "POST",
        &format!("/api/v1/tasks/{}/start", ids[1]),
        Some(token),
        None,
    )
    .await;
    app.request(
        "PUT",
        &format!("/api/v1/tasks/{}/assignee", ids[2]),
        Some(token),
        Some(&json!({"assignee_id": member.user_id})),
    )
    .await;
    app.create_task(&admin, &json!({"title": "100% done_ish"}))
        .await;

    let titles = |response: keystone_tests::TestResponse| -> Vec<String> {
        response.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let by = |query: &str| format!("/api/v1/tasks?sort=created_at&limit=100&{query}");
    assert_eq!(
        titles(app.get(&by("status=in_progress"), token).await),
        ["b"]
    );
    assert_eq!(
        titles(app.get(&by("priority=urgent"), token).await),
        ["b", "d"]
    );
    assert_eq!(
        titles(
            app.get(&by(&format!("assignee_id={}", member.user_id)), token)
                .await
        ),
        ["c"]
    );
    assert_eq!(
        titles(app.get(&by("due_before=2026-12-02"), token).await),
        ["c", "d"]
    );
    assert_eq!(
        titles(app.get(&by("q=%25"), token).await),
        ["100% done_ish"],
        "% is literal"
    );
    assert_eq!(
        titles(app.get(&by("q=DONE_"), token).await),
        ["100% done_ish"]
    );
    assert!(
        titles(app.get(&by("q=d_ne"), token).await).is_empty(),
        "_ is literal"
    );
}

#[actix_web::test]
async fn bad_list_parameters_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    seed(&app, &admin).await;
    let token = admin.access_token.as_str();
    let page = app.get("/api/v1/tasks?sort=priority&limit=2", token).await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    for (query, field) in [
        ("sort=title", "sort"),
        ("status=blocked", "status"),
        ("priority=critical", "priority"),
        ("due_before=tomorrow", "due_before"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=garbage", "cursor"),
        (&format!("sort=due_date&cursor={cursor}") as &str, "cursor"),
    ] {
        let response = app.get(&format!("/api/v1/tasks?{query}"), token).await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{query}: {}",
            response.text
        );
        assert_eq!(response.body["errors"][0]["field"], field, "{query}");
    }
}
