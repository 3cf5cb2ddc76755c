//! Authority is checked against the present on every request: a token issued before a
//! user was deactivated, deleted or demoted carries none of what they lost.

use actix_web::http::StatusCode;
use keystone_tests::{Account, TestApp, spawn_app};
use serde_json::json;

async fn two_admins(app: &TestApp) -> (Account, Account) {
    let first = app.register("first@example.com").await;
    let second = app.add_user(&first, "second@example.com", "admin").await;
    (first, second)
}

fn user(account: &Account) -> String {
    format!("/api/v1/users/{}", account.user_id)
}

#[actix_web::test]
async fn a_deactivated_admin_can_neither_reactivate_themself_nor_act_on_others() {
    let app = spawn_app().await;
    let (first, second) = two_admins(&app).await;
    let deactivated = app
        .request(
            "POST",
            &format!("{}/deactivate", user(&second)),
            Some(&first.access_token),
            None,
        )
        .await;
    assert_eq!(deactivated.status, StatusCode::OK, "{}", deactivated.text);

    let token = Some(second.access_token.as_str());
    for (method, path) in [
        ("POST", format!("{}/activate", user(&second))),
        ("POST", format!("{}/deactivate", user(&first))),
        ("GET", "/api/v1/users".to_owned()),
    ] {
        let refused = app.request(method, &path, token, None).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            refused.text
        );
        assert!(
            refused
                .header("www-authenticate")
                .is_some_and(|h| h.contains("invalid_token")),
            "{:?}",
            refused.headers
        );
    }
    let first_still = app.get(&user(&first), &first.access_token).await;
    assert_eq!(first_still.body["is_active"], true, "{}", first_still.text);
}

#[actix_web::test]
async fn a_deleted_admin_cannot_restore_themself() {
    let app = spawn_app().await;
    let (first, second) = two_admins(&app).await;
    let deleted = app.delete(&user(&second), &first.access_token).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text);
    let restore = format!("{}/restore", user(&second));
    let refused = app
        .request("POST", &restore, Some(&second.access_token), None)
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.text);
    let still = app
        .get(
            &format!("{}?include_deleted=true", user(&second)),
            &first.access_token,
        )
        .await;
    assert!(still.body["deleted_at"].is_string(), "{}", still.text);
}

#[actix_web::test]
async fn a_demoted_admin_loses_admin_powers_at_their_next_request() {
    let app = spawn_app().await;
    let (first, second) = two_admins(&app).await;
    let demoted = app
        .patch(
            &user(&second),
            &first.access_token,
            &json!({"role": "member"}),
        )
        .await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.text);
    let token = Some(second.access_token.as_str());
    let create = json!({"email": "third@example.com", "username": "third", "password": keystone_tests::PASSWORD, "role": "admin"});
    let refused = app.post("/api/v1/users", token, &create).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    let refused = app
        .request("POST", &format!("{}/deactivate", user(&first)), token, None)
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    // Still a member of the tenant: reading is theirs.
    assert_eq!(
        app.get("/api/v1/users/me", &second.access_token)
            .await
            .status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn an_admin_cannot_activate_or_restore_themself() {
    let app = spawn_app().await;
    let (first, _) = two_admins(&app).await;
    for (action, code) in [
        ("activate", "cannot_activate_self"),
        ("restore", "cannot_restore_self"),
    ] {
        let refused = app
            .request(
                "POST",
                &format!("{}/{action}", user(&first)),
                Some(&first.access_token),
                None,
            )
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (StatusCode::CONFLICT, code),
            "{}",
            refused.text
        );
    }
}
