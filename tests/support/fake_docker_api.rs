//! A stand-in for the Docker API socket: answers `GET /containers/json`
//! with the container IDs the test says exist.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

pub struct FakeDockerApi {
    pub socket: PathBuf,
    existing: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl FakeDockerApi {
    pub fn start(existing: &[&str]) -> FakeDockerApi {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let existing = Arc::new(Mutex::new(
            existing.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ));
        let list = existing.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let list = list.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let list = list.clone();
                        async move {
                            let response = if req.uri().path() == "/containers/json" {
                                let body: Vec<_> = list
                                    .lock()
                                    .unwrap()
                                    .iter()
                                    .map(|id| serde_json::json!({ "Id": id }))
                                    .collect();
                                Response::new(Full::new(Bytes::from(
                                    serde_json::to_vec(&body).unwrap(),
                                )))
                            } else {
                                let mut response =
                                    Response::new(Full::new(Bytes::from_static(b"{}")));
                                *response.status_mut() = StatusCode::NOT_FOUND;
                                response
                            };
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeDockerApi {
            socket,
            existing,
            task,
            _dir: dir,
        }
    }

    pub fn set_existing(&self, ids: &[&str]) {
        *self.existing.lock().unwrap() = ids.iter().map(|s| s.to_string()).collect();
    }

    pub fn path(&self) -> &Path {
        &self.socket
    }
}

impl Drop for FakeDockerApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}
