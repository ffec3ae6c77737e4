//! The one Docker API call the plugin makes: which containers exist, so the
//! local copies of removed containers can be deleted. It runs in the store's
//! garbage collector, never on the path of a daemon request.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

const TIMEOUT: Duration = Duration::from_secs(10);

/// IDs of all containers, running or not.
pub async fn container_ids(socket: &Path) -> Result<HashSet<String>, String> {
    let exchange = async {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let request = Request::get("/containers/json?all=1")
            .header("Host", "docker")
            .body(Empty::<Bytes>::new())
            .expect("static request is valid");
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = Limited::new(response.into_body(), 256 << 20)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("GET /containers/json: {status}"));
        }
        let containers: Vec<serde_json::Value> =
            serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(containers
            .iter()
            .filter_map(|c| c["Id"].as_str().map(str::to_string))
            .collect())
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| "the Docker API did not answer".to_string())?
}
