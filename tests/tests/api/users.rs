use actix_web::http::StatusCode;
use keystone_tests::{PASSWORD, spawn_app};
use serde_json::{Value, json};

#[actix_web::test]
async fn me_returns_the_caller() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let response = app.get("/api/v1/users/me", &admin.access_token).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["email"], "admin@example.com");
    assert_eq!(response.body["role"], "admin");
    assert_eq!(response.body["deleted_at"], Value::Null);
}

#[actix_web::test]
async fn an_admin_creates_a_user_who_can_then_sign_in() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let response = app
        .post(
            "/api/v1/users",
            Some(&admin.access_token),
            &json!({"email": "new@example.com", "username": "newbie", "password": PASSWORD, "role": "member"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.text);
    let id = response.body["id"].as_str().unwrap();
    assert_eq!(
        response.header("location"),
        Some(format!("/api/v1/users/{id}").as_str())
    );
    assert_eq!(response.body["tenant_id"], admin.tenant_id.as_str());
    let member = app.login("new@example.com", PASSWORD).await;
    assert_eq!(member.user_id, id);
}

#[actix_web::test]
async fn creating_a_user_with_an_email_taken_in_any_tenant_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    app.register("elsewhere@example.com").await;
    let response = app
        .post(
            "/api/v1/users",
            Some(&admin.access_token),
            &json!({"email": "elsewhere@example.com", "username": "dup", "password": PASSWORD, "role": "member"}),
        )
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.code(), "email_taken");
}

#[actix_web::test]
async fn a_member_calling_admin_routes_gets_403() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let token = Some(member.access_token.as_str());
    let target = &admin.user_id;
    let create = json!({"email": "x@example.com", "username": "xxx", "password": PASSWORD, "role": "member"});
    let attempts = [
        app.request("POST", "/api/v1/users", token, Some(&create))
            .await,
        app.request(
            "POST",
            &format!("/api/v1/users/{target}/deactivate"),
            token,
            None,
        )
        .await,
        app.request(
            "POST",
            &format!("/api/v1/users/{target}/activate"),
            token,
            None,
        )
        .await,
        app.request("DELETE", &format!("/api/v1/users/{target}"), token, None)
            .await,
        app.request(
            "POST",
            &format!("/api/v1/users/{target}/restore"),
            token,
            None,
        )
        .await,
        app.request("GET", "/api/v1/users?include_deleted=true", token, None)
            .await,
        app.request(
            "PATCH",
            &format!("/api/v1/users/{target}"),
            token,
            Some(&json!({"username": "hijack"})),
        )
        .await,
        app.request(
            "PATCH",
            &format!("/api/v1/users/{}", member.user_id),
            token,
            Some(&json!({"role": "admin"})),
        )
        .await,
    ];
    for response in attempts {
        assert_eq!(response.status, StatusCode::FORBIDDEN, "{}", response.text);
        assert_eq!(response.code(), "forbidden");
    }
    let me = app.get("/api/v1/users/me", &member.access_token).await;
    assert_eq!(me.body["role"], "member");
}

#[actix_web::test]
async fn a_member_changes_their_own_username_and_email() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let path = format!("/api/v1/users/{}", member.user_id);
    let body = json!({"username": "renamed", "email": "Renamed@Example.com"});
    let response = app
        .request("PATCH", &path, Some(&member.access_token), Some(&body))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.body["username"], "renamed");
    assert_eq!(response.body["email"], "renamed@example.com");
    app.login("renamed@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn changing_an_email_to_one_already_taken_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let path = format!("/api/v1/users/{}", member.user_id);
    let body = json!({"email": "admin@example.com"});
    let response = app
        .request("PATCH", &path, Some(&member.access_token), Some(&body))
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.code(), "email_taken");
}

#[actix_web::test]
async fn an_admin_promotes_a_member_and_the_new_admin_can_act_after_signing_in_again() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let path = format!("/api/v1/users/{}", member.user_id);
    let response = app
        .request(
            "PATCH",
            &path,
            Some(&admin.access_token),
            Some(&json!({"role": "admin"})),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["role"], "admin");
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": member.refresh_token}),
        )
        .await;
    assert_eq!(
        refreshed.status,
        StatusCode::UNAUTHORIZED,
        "role change ends sessions"
    );
    let promoted = app.login("member@example.com", PASSWORD).await;
    let list = app
        .get("/api/v1/users?include_deleted=true", &promoted.access_token)
        .await;
    assert_eq!(list.status, StatusCode::OK);
}

#[actix_web::test]
async fn an_admin_cannot_deactivate_demote_or_delete_themself() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    app.add_user(&admin, "second@example.com", "admin").await;
    let token = Some(admin.access_token.as_str());
    let me = &admin.user_id;
    let deactivate = app
        .request(
            "POST",
            &format!("/api/v1/users/{me}/deactivate"),
            token,
            None,
        )
        .await;
    assert_eq!(
        (deactivate.status, deactivate.code()),
        (StatusCode::CONFLICT, "cannot_deactivate_self")
    );
    let demote = app
        .request(
            "PATCH",
            &format!("/api/v1/users/{me}"),
            token,
            Some(&json!({"role": "member"})),
        )
        .await;
    assert_eq!(
        (demote.status, demote.code()),
        (StatusCode::CONFLICT, "cannot_demote_self")
    );
    let delete = app
        .request("DELETE", &format!("/api/v1/users/{me}"), token, None)
        .await;
    assert_eq!(
        (delete.status, delete.code()),
        (StatusCode::CONFLICT, "cannot_delete_self")
    );
}

#[actix_web::test]
async fn the_last_active_admin_cannot_be_removed_deactivated_or_demoted() {
    let app = spawn_app().await;
    let first = app.register("admin@example.com").await;
    let second = app.add_user(&first, "second@example.com", "admin").await;
    let path = format!("/api/v1/users/{}/deactivate", second.user_id);
    let response = app
        .request("POST", &path, Some(&first.access_token), None)
        .await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "two active admins: allowed"
    );
    // `first` is now the last active admin. `second` still holds an access token
    // for its remaining lifetime; it must not be able to leave the tenant adminless.
    let token = Some(second.access_token.as_str());
    let target = &first.user_id;
    let attempts = [
        app.request(
            "PATCH",
            &format!("/api/v1/users/{target}"),
            token,
            Some(&json!({"role": "member"})),
        )
        .await,
        app.request(
            "POST",
            &format!("/api/v1/users/{target}/deactivate"),
            token,
            None,
        )
        .await,
        app.request("DELETE", &format!("/api/v1/users/{target}"), token, None)
            .await,
    ];
    for response in attempts {
        assert_eq!(response.status, StatusCode::CONFLICT, "{}", response.text);
        assert_eq!(response.code(), "last_active_admin");
    }
    let me = app.get("/api/v1/users/me", &first.access_token).await;
    assert_eq!(
        (me.body["role"].as_str(), me.body["is_active"].as_bool()),
        (Some("admin"), Some(true))
    );
}

#[actix_web::test]
async fn deactivating_and_activating_a_user_controls_sign_in() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let token = Some(admin.access_token.as_str());
    let deactivated = app
        .request(
            "POST",
            &format!("/api/v1/users/{}/deactivate", member.user_id),
            token,
            None,
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK);
    assert_eq!(deactivated.body["is_active"], false);
    let refresh = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": member.refresh_token}),
        )
        .await;
    assert_eq!(refresh.status, StatusCode::UNAUTHORIZED);
    let activated = app
        .request(
            "POST",
            &format!("/api/v1/users/{}/activate", member.user_id),
            token,
            None,
        )
        .await;
    assert_eq!(activated.body["is_active"], true);
    app.login("member@example.com", PASSWORD).await;
}

#[actix_web::test]
async fn a_deleted_user_is_hidden_until_restored() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let token = admin.access_token.as_str();
    let path = format!("/api/v1/users/{}", member.user_id);
    let deleted = app.request("DELETE", &path, Some(token), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&path, token).await.status, StatusCode::NOT_FOUND);
    let listed = app.get("/api/v1/users", token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let with_deleted = app.get("/api/v1/users?include_deleted=true", token).await;
    let items = with_deleted.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(
        items
            .iter()
            .any(|u| u["id"] == member.user_id.as_str() && !u["deleted_at"].is_null())
    );

    let restored = app
        .request("POST", &format!("{path}/restore"), Some(token), None)
        .await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.text);
    assert_eq!(restored.body["deleted_at"], Value::Null);
    assert_eq!(app.get(&path, token).await.status, StatusCode::OK);
}

#[actix_web::test]
async fn restoring_a_user_that_is_not_deleted_is_a_conflict() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let path = format!("/api/v1/users/{}/restore", member.user_id);
    let response = app
        .request("POST", &path, Some(&admin.access_token), None)
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    assert_eq!(response.code(), "user_not_deleted");
}

#[actix_web::test]
async fn listing_pages_through_every_user_once_in_creation_order() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    for n in 0..4 {
        app.post(
            "/api/v1/users",
            Some(&admin.access_token),
            &json!({"email": format!("user{n}@example.com"), "username": format!("user{n}"), "password": PASSWORD, "role": "member"}),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2".to_owned();
    loop {
        let page = app.get(&path, &admin.access_token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text);
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(
            items
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "admin@example.com",
            "user0@example.com",
            "user1@example.com",
            "user2@example.com",
            "user3@example.com"
        ]
    );
}

#[actix_web::test]
async fn listing_filters_by_text_and_activity() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let alice = app.add_user(&admin, "alice@example.com", "member").await;
    app.add_user(&admin, "bob@example.com", "member").await;
    let token = admin.access_token.as_str();
    let found = app.get("/api/v1/users?q=ALI", token).await;
    let emails: Vec<&str> = found.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com"]);
    let wildcard = app.get("/api/v1/users?q=%25", token).await;
    assert_eq!(
        wildcard.body["items"].as_array().unwrap().len(),
        0,
        "% is literal"
    );

    app.request(
        "POST",
        &format!("/api/v1/users/{}/deactivate", alice.user_id),
        Some(token),
        None,
    )
    .await;
    let inactive = app.get("/api/v1/users?is_active=false", token).await;
    let emails: Vec<&str> = inactive.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["alice@example.com"]);
}

#[actix_web::test]
async fn a_member_lists_and_reads_colleagues() {
    let app = spawn_app().await;
    let admin = app.register("admin@example.com").await;
    let member = app.add_user(&admin, "member@example.com", "member").await;
    let list = app.get("/api/v1/users", &member.access_token).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    let read = app
        .get(
            &format!("/api/v1/users/{}", admin.user_id),
            &member.access_token,
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    assert!(!read.text.contains("argon2"));
}
