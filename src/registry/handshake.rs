//! Answering a registry's 401: basic credentials, or a bearer token from
//! its token server.

use super::auth::{parse_challenge, Challenge, Credentials};
use super::client::*;
use super::transport::*;
use crate::error::{Error, Result};

impl Client {
    pub(super) fn auth_failed(&self, url: &str, why: Option<&str>) -> Error {
        let who = match &self.config.credentials {
            Credentials::Anonymous | Credentials::AuthFiles(_) => {
                "no credentials were given".to_string()
            }
            Credentials::Basic { user, .. } => format!("user {user:?} was refused"),
        };
        url_error(
            url,
            format!(
                "authentication failed for registry {}: {}",
                self.host,
                why.unwrap_or(&who)
            ),
        )
    }

    /// Answers a `WWW-Authenticate` challenge: sets the `Authorization` sent
    /// from now on.
    pub(super) fn authenticate(&self, challenge: Option<&str>, url: &str) -> Result<()> {
        let value = match challenge.and_then(parse_challenge) {
            None => {
                return Err(self.auth_failed(
                    url,
                    Some(&format!(
                        "401 with an unsupported challenge {:?}",
                        challenge.unwrap_or("")
                    )),
                ))
            }
            Some(Challenge::Basic) => self
                .config
                .credentials
                .basic_header()
                .ok_or_else(|| self.auth_failed(url, None))?,
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => format!(
                "Bearer {}",
                self.fetch_token(&realm, service.as_deref(), scope.as_deref())?
            ),
        };
        *self.authorization.lock().expect("not poisoned") = Some(value);
        Ok(())
    }

    /// A bearer token from the token server `realm`.
    pub(super) fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String> {
        if self.config.tls_verify && !realm.starts_with("https://") {
            return Err(self.auth_failed(
                realm,
                Some("the token server is not https (credentials would be sent in clear)"),
            ));
        }
        let mut url = realm.to_string();
        for (k, v) in [("service", service), ("scope", scope)] {
            if let Some(v) = v {
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&format!("{k}={}", query_escape(v)));
            }
        }
        let mut request = Request::new("GET", url.clone());
        let basic = self.config.credentials.basic_header();
        let resp = self.send_retrying(&mut request, basic.as_deref())?;
        if resp.status() == 401 || resp.status() == 403 {
            return Err(self.auth_failed(&url, None));
        }
        let resp = self.expect(resp, "GET", &url, &[200])?;
        let body = self.read_body(resp, 1 << 20, &url)?;
        let json: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| url_error(&url, format!("bad token JSON: {e}")))?;
        ["token", "access_token"]
            .iter()
            .find_map(|k| json.get(k)?.as_str().filter(|t| !t.is_empty()))
            .map(str::to_string)
            .ok_or_else(|| url_error(&url, "no token in the answer"))
    }
}
