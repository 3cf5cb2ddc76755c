//! The task API: creation, reads with `ETag`s, changes under the rules, and permissions.

use actix_web::http::StatusCode;
use keystone_tests::{Account, TestApp, spawn_app};
use serde_json::{Value, json};

fn path(task: &Value) -> String {
    format!("/api/v1/tasks/{}", task["id"].as_str().unwrap())
}

async fn setup() -> (TestApp, Account) {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    (app, admin)
}

#[actix_web::test]
async fn creating_a_task_returns_it_with_location_and_etag() {
    let (app, admin) = setup().await;
    let body =
        json!({"title": "  Ship v1 ", "due_date": "2026-12-01", "checklist": ["tests", "docs"]});
    let response = app
        .post("/api/v1/tasks", Some(&admin.access_token), &body)
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let task = &response.body;
    assert_eq!(response.header("location"), Some(path(task).as_str()));
    assert_eq!(response.header("etag"), Some("\"0\""));
    assert_eq!(task["title"], "Ship v1");
    assert_eq!(task["status"], "todo");
    assert_eq!(task["priority"], "medium");
    assert_eq!(task["due_date"], "2026-12-01");
    assert_eq!(task["creator_id"], admin.user_id.as_str());
    assert_eq!(task["tenant_id"], admin.tenant_id.as_str());
    assert_eq!(task["assignee_id"], Value::Null);
    let texts: Vec<&str> = task["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["tests", "docs"]);
    assert_eq!(task["version"], 0);
}

#[actix_web::test]
async fn invalid_task_fields_are_all_listed_and_nothing_is_created() {
    let (app, admin) = setup().await;
    let body =
        json!({"title": " ", "priority": "critical", "due_date": "2026-02-30", "checklist": [""]});
    let response = app
        .post("/api/v1/tasks", Some(&admin.access_token), &body)
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    let mut fields: Vec<String> = response.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    assert!(fields.iter().any(|f| f == "title"), "{fields:?}");
    assert!(fields.iter().any(|f| f == "priority"), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("due_date")),
        "{fields:?}"
    );
    let list = app.get("/api/v1/tasks", &admin.access_token).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn a_task_with_51_checklist_items_is_refused() {
    let (app, admin) = setup().await;
    let items: Vec<String> = (0..51).map(|n| format!("item {n}")).collect();
    let response = app
        .post(
            "/api/v1/tasks",
            Some(&admin.access_token),
            &json!({"title": "big", "checklist": items}),
        )
        .await;
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        response.text
    );
    assert_eq!(response.body["errors"][0]["field"], "checklist");
}

#[actix_web::test]
async fn get_answers_304_when_the_etag_still_matches() {
    let (app, admin) = setup().await;
    let task = app.create_task(&admin, &json!({"title": "Cache me"})).await;
    let first = app.get(&path(&task), &admin.access_token).await;
    assert_eq!(first.status, StatusCode::OK);
    let etag = first.header("etag").unwrap().to_owned();
    let cached = app
        .request_with(
            "GET",
            &path(&task),
            &admin.access_token,
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.text.is_empty());
    assert_eq!(cached.header("etag"), Some(etag.as_str()));
    app.request(
        "POST",
        &format!("{}/start", path(&task)),
        Some(&admin.access_token),
        None,
    )
    .await;
    let changed = app
        .request_with(
            "GET",
            &path(&task),
            &admin.access_token,
            &[("if-none-match", &etag)],
            None,
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_eq!(changed.header("etag"), Some("\"1\""));
}

#[actix_web::test]
async fn patch_changes_given_fields_and_null_clears_optional_ones() {
    let (app, admin) = setup().await;
    let task = app
        .create_task(
            &admin,
            &json!({"title": "Draft", "description": "words", "due_date": "2026-12-01"}),
        )
        .await;
    let token = &admin.access_token;
    let response = app
        .patch(
            &path(&task),
            token,
            &json!({"title": "Final", "priority": "urgent"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["title"], "Final");
    assert_eq!(response.body["priority"], "urgent");
    assert_eq!(
        response.body["due_date"], "2026-12-01",
        "absent fields stay"
    );
    assert_eq!(response.header("etag"), Some("\"1\""));
    let cleared = app
        .patch(
            &path(&task),
            token,
            &json!({"due_date": null, "description": null}),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text);
    assert_eq!(cleared.body["due_date"], Value::Null);
    assert_eq!(cleared.body["description"], "");
    let refused = app
        .patch(&path(&task), token, &json!({"title": null}))
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[actix_web::test]
async fn a_task_moves_through_its_states_and_rule_violations_are_409_with_codes() {
    let (app, admin) = setup().await;
    let task = app
        .create_task(&admin, &json!({"title": "Flow", "checklist": ["check"]}))
        .await;
    let token = Some(admin.access_token.as_str());
    let base = path(&task);
    let complete_early = app
        .request("POST", &format!("{base}/complete"), token, None)
        .await;
    assert_eq!(
        (complete_early.status, complete_early.code()),
        (StatusCode::CONFLICT, "invalid_transition")
    );
    let started = app
        .request("POST", &format!("{base}/start"), token, None)
        .await;
    assert_eq!(started.body["status"], "in_progress");
    let again = app
        .request("POST", &format!("{base}/start"), token, None)
        .await;
    assert_eq!(again.code(), "invalid_transition");
    let incomplete = app
        .request("POST", &format!("{base}/complete"), token, None)
        .await;
    assert_eq!(
        (incomplete.status, incomplete.code()),
        (StatusCode::CONFLICT, "checklist_incomplete")
    );
    let item = task["checklist"][0]["id"].as_str().unwrap();
    let ticked = app
        .patch(
            &format!("{base}/checklist/{item}"),
            &admin.access_token,
            &json!({"done": true}),
        )
        .await;
    assert_eq!(ticked.status, StatusCode::OK, "{}", ticked.text);
    let done = app
        .request("POST", &format!("{base}/complete"), token, None)
        .await;
    assert_eq!(done.body["status"], "done");
    assert!(done.body["completed_at"].is_string());
    let edit = app
        .patch(&base, &admin.access_token, &json!({"title": "Edited"}))
        .await;
    assert_eq!(
        (edit.status, edit.code()),
        (StatusCode::CONFLICT, "task_done_is_read_only")
    );
    let reopened = app
        .request("POST", &format!("{base}/reopen"), token, None)
        .await;
    assert_eq!(reopened.body["status"], "todo");
    assert_eq!(reopened.body["completed_at"], Value::Null);
}

#[actix_web::test]
async fn the_checklist_is_changed_through_its_own_routes() {
    let (app, admin) = setup().await;
    let task = app.create_task(&admin, &json!({"title": "List"})).await;
    let base = path(&task);
    let token = &admin.access_token;
    let added = app
        .post(
            &format!("{base}/checklist"),
            Some(token),
            &json!({"text": "write"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let item = added.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        added.header("location"),
        Some(format!("{base}/checklist/{item}").as_str())
    );
    assert_eq!(added.body["done"], false);
    assert_eq!(added.header("etag"), Some("\"1\""));
    let fetched = app.get(added.header("location").unwrap(), token).await;
    assert_eq!(
        fetched.status,
        StatusCode::OK,
        "the Location resolves: {}",
        fetched.text
    );
    assert_eq!(fetched.body, added.body);
    let renamed = app
        .patch(
            &format!("{base}/checklist/{item}"),
            token,
            &json!({"text": "rewrite"}),
        )
        .await;
    assert_eq!(renamed.body["checklist"][0]["text"], "rewrite");
    let removed = app.delete(&format!("{base}/checklist/{item}"), token).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let missing = app.delete(&format!("{base}/checklist/{item}"), token).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let read = app.get(&base, token).await;
    assert_eq!(read.body["checklist"].as_array().unwrap().len(), 0);
}

#[actix_web::test]
async fn the_fifty_first_checklist_item_is_refused() {
    let (app, admin) = setup().await;
    let items: Vec<String> = (0..50).map(|n| format!("item {n}")).collect();
    let task = app
        .create_task(&admin, &json!({"title": "Full", "checklist": items}))
        .await;
    let response = app
        .post(
            &format!("{}/checklist", path(&task)),
            Some(&admin.access_token),
            &json!({"text": "one more"}),
        )
        .await;
    assert_eq!(
        (response.status, response.code()),
        (StatusCode::CONFLICT, "checklist_full")
    );
}

#[actix_web::test]
async fn assigning_accepts_only_active_users_of_the_tenant() {
    let (app, admin) = setup().await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let inactive = app.add_user(&admin, "inactive@example.com", "member").await;
    app.request(
        "POST",
        &format!("/api/v1/users/{}/deactivate", inactive.user_id),
        Some(&admin.access_token),
        None,
    )
    .await;
    let stranger = app.register("stranger@example.com").await;
    let task = app
        .create_task(&admin, &json!({"title": "Assign me"}))
        .await;
    let assignee = format!("{}/assignee", path(&task));
    for invalid in [&stranger.user_id, &inactive.user_id] {
        let response = app
            .request(
                "PUT",
                &assignee,
                Some(&admin.access_token),
                Some(&json!({"assignee_id": invalid})),
            )
            .await;
        assert_eq!(
            response.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            response.text
        );
        assert_eq!(response.code(), "assignee_invalid");
    }
    let assigned = app
        .request(
            "PUT",
            &assignee,
            Some(&admin.access_token),
            Some(&json!({"assignee_id": member.user_id})),
        )
        .await;
    assert_eq!(assigned.body["assignee_id"], member.user_id.as_str());
    let unassigned = app
        .request(
            "PUT",
            &assignee,
            Some(&admin.access_token),
            Some(&json!({"assignee_id": null})),
        )
        .await;
    assert_eq!(unassigned.body["assignee_id"], Value::Null);
}

#[actix_web::test]
async fn members_read_every_task_but_change_only_their_own_or_assigned_ones() {
    let (app, admin) = setup().await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let admins_task = app.create_task(&admin, &json!({"title": "Admin's"})).await;
    let token = Some(member.access_token.as_str());
    assert_eq!(
        app.get(&path(&admins_task), &member.access_token)
            .await
            .status,
        StatusCode::OK
    );
    let forbidden = app
        .request(
            "POST",
            &format!("{}/start", path(&admins_task)),
            token,
            None,
        )
        .await;
    assert_eq!(
        (forbidden.status, forbidden.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let delete = app.delete(&path(&admins_task), &member.access_token).await;
    assert_eq!(delete.status, StatusCode::FORBIDDEN);

    let own = app.create_task(&member, &json!({"title": "Mine"})).await;
    let started = app
        .request("POST", &format!("{}/start", path(&own)), token, None)
        .await;
    assert_eq!(started.status, StatusCode::OK);

    app.request(
        "PUT",
        &format!("{}/assignee", path(&admins_task)),
        Some(&admin.access_token),
        Some(&json!({"assignee_id": member.user_id})),
    )
    .await;
    let assigned = app
        .request(
            "POST",
            &format!("{}/start", path(&admins_task)),
            token,
            None,
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.text);
}

#[actix_web::test]
async fn a_deleted_task_disappears_until_an_admin_restores_it() {
    let (app, admin) = setup().await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let task = app.create_task(&member, &json!({"title": "Bin me"})).await;
    let deleted = app.delete(&path(&task), &member.access_token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&path(&task), &admin.access_token).await.status,
        StatusCode::NOT_FOUND
    );
    let list = app.get("/api/v1/tasks", &admin.access_token).await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
    let with_deleted = app
        .get("/api/v1/tasks?include_deleted=true", &admin.access_token)
        .await;
    assert_eq!(with_deleted.body["items"].as_array().unwrap().len(), 1);
    let member_asks = app
        .get("/api/v1/tasks?include_deleted=true", &member.access_token)
        .await;
    assert_eq!(member_asks.status, StatusCode::FORBIDDEN);
    let restore = format!("{}/restore", path(&task));
    let by_member = app
        .request("POST", &restore, Some(&member.access_token), None)
        .await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    let by_admin = app
        .request("POST", &restore, Some(&admin.access_token), None)
        .await;
    assert_eq!(by_admin.status, StatusCode::OK, "{}", by_admin.text);
    assert_eq!(by_admin.body["deleted_at"], Value::Null);
    let not_deleted = app
        .request("POST", &restore, Some(&admin.access_token), None)
        .await;
    assert_eq!(
        (not_deleted.status, not_deleted.code()),
        (StatusCode::CONFLICT, "task_not_deleted")
    );
}

#[actix_web::test]
async fn another_tenants_task_is_not_found_on_every_route() {
    let (app, admin) = setup().await;
    let other = app.register("other@example.com").await;
    let task = app
        .create_task(&other, &json!({"title": "Secret", "checklist": ["x"]}))
        .await;
    let base = path(&task);
    let item = task["checklist"][0]["id"].as_str().unwrap();
    let token = admin.access_token.as_str();
    let responses = [
        app.get(&base, token).await,
        app.patch(&base, token, &json!({"title": "Mine now"})).await,
        app.request("POST", &format!("{base}/start"), Some(token), None)
            .await,
        app.request(
            "PUT",
            &format!("{base}/assignee"),
            Some(token),
            Some(&json!({"assignee_id": null})),
        )
        .await,
        app.post(
            &format!("{base}/checklist"),
            Some(token),
            &json!({"text": "x"}),
        )
        .await,
        app.patch(
            &format!("{base}/checklist/{item}"),
            token,
            &json!({"done": true}),
        )
        .await,
        app.delete(&format!("{base}/checklist/{item}"), token).await,
        app.delete(&base, token).await,
        app.request("POST", &format!("{base}/restore"), Some(token), None)
            .await,
    ];
    for response in responses {
        assert_eq!(response.status, StatusCode::NOT_FOUND, "{}", response.text);
    }
    let list = app.get("/api/v1/tasks?q=Secret", token).await;
    assert!(list.body["items"].as_array().unwrap().is_empty());
    let untouched = app.get(&base, &other.access_token).await;
    assert_eq!(untouched.body["title"], "Secret");
    assert_eq!(untouched.body["version"], 0);
}

#[actix_web::test]
async fn a_stale_if_match_is_a_412_carrying_the_current_etag() {
    let (app, admin) = setup().await;
    let task = app.create_task(&admin, &json!({"title": "Guarded"})).await;
    let token = &admin.access_token;
    let base = path(&task);
    let first = app
        .request_with(
            "PATCH",
            &base,
            token,
            &[("if-match", "\"0\"")],
            Some(&json!({"title": "One"})),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.header("etag"), Some("\"1\""));
    let stale = app
        .request_with(
            "PATCH",
            &base,
            token,
            &[("if-match", "\"0\"")],
            Some(&json!({"title": "Two"})),
        )
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    assert_eq!(stale.code(), "precondition_failed");
    assert_eq!(stale.header("etag"), Some("\"1\""));
    let start = app
        .request_with(
            "POST",
            &format!("{base}/start"),
            token,
            &[("if-match", "\"0\"")],
            None,
        )
        .await;
    assert_eq!(start.status, StatusCode::PRECONDITION_FAILED);
    let read = app.get(&base, token).await;
    assert_eq!(read.body["title"], "One");
    assert_eq!(read.body["status"], "todo");
}

/// Without If-Match, concurrent writers never overwrite each other silently: every
/// request either wins or gets 409, and every win is still there afterwards. Each
/// writer adds a checklist item, so a lost update would lose an item.
#[actix_web::test]
async fn concurrent_changes_without_if_match_either_win_or_conflict() {
    let (app, admin) = setup().await;
    let task = app.create_task(&admin, &json!({"title": "Hot"})).await;
    let checklist = format!("{}/checklist", path(&task));
    let requests = (0..12).map(|n| {
        let body = json!({"text": format!("writer {n}")});
        let (app, checklist, token) = (&app, &checklist, &admin.access_token);
        async move { app.post(checklist, Some(token), &body).await }
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut won = Vec::new();
    for response in &responses {
        match (response.status, response.code()) {
            (StatusCode::CREATED, _) => {
                won.push(response.body["text"].as_str().unwrap().to_owned());
            }
            (StatusCode::CONFLICT, "concurrent_modification") => {}
            _ => panic!("unexpected answer: {}", response.text),
        }
    }
    let read = app.get(&path(&task), &admin.access_token).await;
    let mut kept: Vec<String> = read.body["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["text"].as_str().unwrap().to_owned())
        .collect();
    won.sort();
    kept.sort();
    assert!(!won.is_empty());
    assert_eq!(kept, won, "exactly the winners' items are kept");
    assert_eq!(read.body["version"], won.len());
}
