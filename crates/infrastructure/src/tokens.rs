//! Access tokens: short-lived HS256 JWTs that carry the caller's user, tenant and role.
//!
//! Every token names its key in the `kid` header. New tokens are signed with the signing
//! key; tokens signed with a previous key stay valid while that key is listed among the
//! verification keys, which is how the secret is rotated without signing everyone out.

use std::time::Duration;

use anyhow::Context;
use application::Principal;
use application::ports::{AccessToken, AccessTokens, TokenRejection};
use chrono::{DateTime, Utc};
use domain::{Aggregate, Role, TenantId, User, UserId};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only algorithm issued and accepted. Asymmetric keys would be a second adapter;
/// accepting several algorithms is how `alg` confusion attacks start.
const ALGORITHM: Algorithm = Algorithm::HS256;

/// Clock skew tolerated on `exp`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// An HMAC secret and the id tokens name it by. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct JwtKey {
    kid: String,
    secret: String,
}

impl JwtKey {
    #[must_use]
    pub fn new(kid: impl Into<String>, secret: impl Into<String>) -> Self {
        Self {
            kid: kid.into(),
            secret: secret.into(),
        }
    }
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// What the token adapter needs. Secrets should be at least 32 random bytes (RFC 7518
/// §3.2); the server's settings enforce that in production.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    pub issuer: String,
    pub audience: String,
    pub ttl: Duration,
    pub signing_key: JwtKey,
    /// Previous signing keys whose tokens are still accepted.
    pub verification_keys: Vec<JwtKey>,
}

/// The claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// The user.
    sub: Uuid,
    /// The user's tenant.
    tid: Uuid,
    role: String,
    iat: i64,
    exp: i64,
    jti: Uuid,
}

/// Issues and verifies access tokens.
pub struct JwtAccessTokens {
    issuer: String,
    audience: String,
    ttl: Duration,
    signing_kid: String,
    signing_key: EncodingKey,
    /// The signing key first: if a previous key reuses its `kid`, the current one wins.
    verification_keys: Vec<(String, DecodingKey)>,
    validation: Validation,
}

impl JwtAccessTokens {
    #[must_use]
    pub fn new(config: JwtConfig) -> Self {
        let mut validation = Validation::new(ALGORITHM);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        let verification_keys = std::iter::once(&config.signing_key)
            .chain(&config.verification_keys)
            .map(|key| {
                (
                    key.kid.clone(),
                    DecodingKey::from_secret(key.secret.as_bytes()),
                )
            })
            .collect();
        Self {
            signing_key: EncodingKey::from_secret(config.signing_key.secret.as_bytes()),
            signing_kid: config.signing_key.kid,
            issuer: config.issuer,
            audience: config.audience,
            ttl: config.ttl,
            verification_keys,
            validation,
        }
    }

    fn verification_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verification_keys
            .iter()
            .find(|(known, _)| known == kid)
            .map(|(_, key)| key)
    }
}

impl AccessTokens for JwtAccessTokens {
    fn issue(&self, user: &User, now: DateTime<Utc>) -> anyhow::Result<AccessToken> {
        let ttl = chrono::Duration::from_std(self.ttl).context("the token lifetime is too long")?;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id().as_uuid(),
            tid: user.tenant_id().as_uuid(),
            role: user.role().as_str().to_owned(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti: Uuid::now_v7(),
        };
        let header = Header {
            kid: Some(self.signing_kid.clone()),
            ..Header::new(ALGORITHM)
        };
        let token = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .context("signing an access token")?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl,
        })
    }

    fn verify(&self, token: &str) -> Result<Principal, TokenRejection> {
        // Refuse on the header alone before touching keys or claims.
        let header =
            jsonwebtoken::decode_header(token).map_err(|error| header_rejection(&error))?;
        if header.alg != ALGORITHM {
            return Err(TokenRejection::Algorithm);
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verification_key(kid))
            .ok_or(TokenRejection::UnknownKey)?;
        // The signature is checked before any claim, so claims of forged tokens are never
        // judged.
        let claims = jsonwebtoken::decode::<Claims>(token, key, &self.validation)
            .map_err(|error| claims_rejection(&error))?
            .claims;
        Ok(Principal {
            user_id: UserId::from_uuid(claims.sub),
            tenant_id: TenantId::from_uuid(claims.tid),
            role: Role::parse(&claims.role).map_err(|_| TokenRejection::Malformed)?,
        })
    }
}

/// jsonwebtoken cannot even parse a header whose `alg` it does not know, `none` among
/// them: well-formed JSON that does not fit its `Header` comes back as a JSON *data*
/// error, which we report as a refused algorithm. Anything else is malformed.
fn header_rejection(error: &JwtError) -> TokenRejection {
    match error.kind() {
        ErrorKind::Json(json) if json.is_data() => TokenRejection::Algorithm,
        _ => TokenRejection::Malformed,
    }
}

fn claims_rejection(error: &JwtError) -> TokenRejection {
    match error.kind() {
        ErrorKind::InvalidSignature => TokenRejection::Signature,
        ErrorKind::ExpiredSignature => TokenRejection::Expired,
        ErrorKind::InvalidIssuer => TokenRejection::Issuer,
        ErrorKind::InvalidAudience => TokenRejection::Audience,
        ErrorKind::InvalidAlgorithm => TokenRejection::Algorithm,
        _ => TokenRejection::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use domain::Aggregate;
    use domain::{Email, PasswordHash, Username};

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config(kid: &str, secret: &str) -> JwtConfig {
        JwtConfig {
            issuer: "keystone".to_owned(),
            audience: "keystone-api".to_owned(),
            ttl: Duration::from_mins(15),
            signing_key: JwtKey::new(kid, secret),
            verification_keys: Vec::new(),
        }
    }

    fn tokens() -> JwtAccessTokens {
        JwtAccessTokens::new(config("k1", SECRET))
    }

    fn user_with(role: Role) -> User {
        let id = UserId::from_uuid(Uuid::now_v7());
        User::register(
            id,
            id,
            TenantId::from_uuid(Uuid::now_v7()),
            Email::parse("someone@example.com").unwrap(),
            Username::parse("someone").unwrap(),
            PasswordHash::new("hash".to_owned()),
            role,
            Utc::now(),
        )
    }

    fn user() -> User {
        user_with(Role::Admin)
    }

    fn valid_claims(user: &User) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            iss: "keystone".to_owned(),
            aud: "keystone-api".to_owned(),
            sub: user.id().as_uuid(),
            tid: user.tenant_id().as_uuid(),
            role: user.role().as_str().to_owned(),
            iat: now,
            exp: now + 900,
            jti: Uuid::now_v7(),
        }
    }

    fn encode_part(json: &impl Serialize) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(json).unwrap())
    }

    #[test]
    fn an_issued_token_verifies_to_the_users_principal() {
        let tokens = tokens();
        let user = user();
        let issued = tokens.issue(&user, Utc::now()).unwrap();
        assert_eq!(issued.expires_in, Duration::from_mins(15));
        let principal = tokens.verify(&issued.token).unwrap();
        assert_eq!(
            principal,
            Principal {
                user_id: user.id(),
                tenant_id: user.tenant_id(),
                role: Role::Admin
            }
        );
    }

    #[test]
    fn an_issued_token_carries_kid_and_every_claim() {
        let tokens = tokens();
        let now = Utc::now();
        let issued = tokens.issue(&user(), now).unwrap();
        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.alg, Algorithm::HS256);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        let claims = jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &tokens.validation,
        )
        .unwrap()
        .claims;
        assert_eq!(claims.iat, now.timestamp());
        assert_eq!(claims.exp, now.timestamp() + 900);
        assert_eq!(claims.jti.get_version_num(), 7);
    }

    #[test]
    fn an_unsigned_token_with_alg_none_is_refused_for_its_algorithm() {
        let header = serde_json::json!({"alg": "none", "typ": "JWT", "kid": "k1"});
        let token = format!(
            "{}.{}.",
            encode_part(&header),
            encode_part(&valid_claims(&user()))
        );
        assert_eq!(tokens().verify(&token), Err(TokenRejection::Algorithm));
    }

    #[test]
    fn a_token_signed_with_hs384_is_refused_for_its_algorithm() {
        let header = Header {
            kid: Some("k1".to_owned()),
            ..Header::new(Algorithm::HS384)
        };
        let token = jsonwebtoken::encode(
            &header,
            &valid_claims(&user()),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(tokens().verify(&token), Err(TokenRejection::Algorithm));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let tokens = tokens();
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        let issued = tokens.issue(&user(), an_hour_ago).unwrap();
        assert_eq!(tokens.verify(&issued.token), Err(TokenRejection::Expired));
    }

    #[test]
    fn a_token_from_another_issuer_is_refused() {
        let mut other = config("k1", SECRET);
        other.issuer = "someone-else".to_owned();
        let issued = JwtAccessTokens::new(other)
            .issue(&user(), Utc::now())
            .unwrap();
        assert_eq!(tokens().verify(&issued.token), Err(TokenRejection::Issuer));
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let mut other = config("k1", SECRET);
        other.audience = "another-api".to_owned();
        let issued = JwtAccessTokens::new(other)
            .issue(&user(), Utc::now())
            .unwrap();
        assert_eq!(
            tokens().verify(&issued.token),
            Err(TokenRejection::Audience)
        );
    }

    #[test]
    fn a_token_naming_an_unknown_key_is_refused() {
        let issued = JwtAccessTokens::new(config("k9", SECRET))
            .issue(&user(), Utc::now())
            .unwrap();
        assert_eq!(
            tokens().verify(&issued.token),
            Err(TokenRejection::UnknownKey)
        );
    }

    #[test]
    fn a_token_signed_with_another_secret_under_a_known_kid_is_refused() {
        let forger = JwtAccessTokens::new(config("k1", "another secret, just as long as ours"));
        let issued = forger.issue(&user(), Utc::now()).unwrap();
        assert_eq!(
            tokens().verify(&issued.token),
            Err(TokenRejection::Signature)
        );
    }

    #[test]
    fn a_member_token_altered_to_claim_admin_is_refused_for_its_signature() {
        let tokens = tokens();
        let member = user_with(Role::Member);
        let issued = tokens.issue(&member, Utc::now()).unwrap();
        let mut parts: Vec<String> = issued.token.split('.').map(str::to_owned).collect();
        let mut claims = valid_claims(&member);
        claims.role = "admin".to_owned();
        parts[1] = encode_part(&claims);
        assert_eq!(
            tokens.verify(&parts.join(".")),
            Err(TokenRejection::Signature)
        );
    }

    #[test]
    fn a_token_signed_with_a_previous_key_is_still_accepted() {
        let before_rotation = JwtAccessTokens::new(config("k1", SECRET));
        let issued = before_rotation.issue(&user(), Utc::now()).unwrap();
        let mut rotated = config("k2", "the new secret, also 32 bytes long!");
        rotated.verification_keys = vec![JwtKey::new("k1", SECRET)];
        let after_rotation = JwtAccessTokens::new(rotated);
        assert!(after_rotation.verify(&issued.token).is_ok());
        let fresh = after_rotation.issue(&user(), Utc::now()).unwrap();
        let header = jsonwebtoken::decode_header(&fresh.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k2"));
    }

    #[test]
    fn garbage_is_malformed() {
        let tokens = tokens();
        for token in ["", "abc", "a.b.c", "not.a.jwt.at.all"] {
            assert_eq!(
                tokens.verify(token),
                Err(TokenRejection::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn a_key_never_prints_its_secret() {
        let printed = format!("{:?}", config("k1", SECRET));
        assert!(printed.contains("k1"));
        assert!(!printed.contains(SECRET), "{printed}");
    }
}
