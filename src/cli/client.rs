//! The CLI's HTTP client: finds the server and the token, sends requests, and turns
//! the server's JSON errors into messages a person can act on.

use anyhow::{Context, anyhow, bail};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::ErrorBody;

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(base: &str, token: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
        }
    }

    /// The server's URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(Method::GET, path, None::<&Value>).await
    }

    pub async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> anyhow::Result<T> {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<T> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach spectask at {}: {e}. Is `spectask serve` running? (set --url or SPECTASK_URL otherwise)",
                self.base
            )
        })?;
        let status = resp.status();
        let bytes = resp.bytes().await.context("reading the server's answer")?;
        if !status.is_success() {
            if let Ok(err) = serde_json::from_slice::<ErrorBody>(&bytes) {
                let hint = if status == StatusCode::UNAUTHORIZED {
                    " (check --token, SPECTASK_TOKEN or the token file in the data dir)"
                } else {
                    ""
                };
                bail!("{}{hint} [{}]", err.error.message, err.error.code);
            }
            bail!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        // 204 No Content: nothing to read.
        let bytes = if bytes.is_empty() {
            bytes::Bytes::from_static(b"null")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).with_context(|| format!("unexpected answer from {url}"))
    }
}
