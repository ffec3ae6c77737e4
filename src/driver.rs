//! The driver: what the plugin knows about each FIFO it reads. StartLogging
//! validates a container's options, opens its FIFO, computes its labels and
//! attaches its buffer to the shared batcher of its endpoint; the reader task
//! then runs until EOF. StopLogging only answers: the reader keeps going.
//!
//! Each attachment is also written to the state directory so that, after a
//! crash, the restarted plugin finds the FIFOs again (the daemon re-sends
//! nothing). Shutdown stops the readers, flushes for a grace period, and
//! reports what could not be delivered.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::assemble::Assembler;
use crate::batch::Endpoint;
use crate::buffer::{ContainerBuffer, MemoryBudget};
use crate::config::labels::{StreamLabels, container_labels};
use crate::config::options::{ContainerConfig, EndpointConfig, OptionError, clamp_to_ranges};
use crate::config::settings::Settings;
use crate::config::time::parse_time;
use crate::fifo::{ReadEnd, read_fifo};
use crate::local_copy::{ContainerLog, LocalStore, ReadRequest};
use crate::loki::LokiClient;
use crate::protocol::{ContainerInfo, ReadLogsRequest, StartLoggingRequest};
use crate::tls_files::{TlsMaterial, load_tls};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Options(#[from] OptionError),
    #[error("already logging to {0}")]
    AlreadyLogging(String),
    #[error("cannot open the log FIFO {path}: {error}")]
    Fifo { path: String, error: std::io::Error },
    #[error("cannot set up the Loki client: {0}")]
    Client(String),
    #[error("the plugin is shutting down")]
    ShuttingDown,
}

pub struct Driver {
    settings: Settings,
    store: Option<Arc<LocalStore>>,
    budget: Arc<MemoryBudget>,
    /// Buffers of the FIFOs being read, by the path the daemon sent.
    attached: Mutex<HashMap<String, Arc<ContainerBuffer>>>,
    endpoints: Mutex<HashMap<EndpointConfig, Arc<Endpoint>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop_readers: watch::Sender<bool>,
    drain: watch::Sender<Option<Instant>>,
}

impl Driver {
    pub fn new(settings: Settings) -> Arc<Driver> {
        let store = settings
            .data_dir
            .as_ref()
            .map(|dir| Arc::new(LocalStore::new(dir.join("logs"))));
        Arc::new(Driver {
            store,
            budget: Arc::new(MemoryBudget::new(settings.total_buffer_size)),
            settings,
            attached: Mutex::new(HashMap::new()),
            endpoints: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            stop_readers: watch::channel(false).0,
            drain: watch::channel(None).0,
        })
    }

    /// Handles StartLogging. Opens no network connection; the only wait is
    /// for a new endpoint's TLS files, read off the runtime within
    /// `tls_files::TLS_FILES_TIME_LIMIT`.
    pub async fn start_logging(
        self: &Arc<Self>,
        request: StartLoggingRequest,
    ) -> Result<(), StartError> {
        if *self.stop_readers.borrow() {
            return Err(StartError::ShuttingDown);
        }
        let info = &request.info;
        let config = ContainerConfig::from_log_opts(&info.config.clone().unwrap_or_default())?;
        let tls = self.tls_for(&config.endpoint).await?;
        if self
            .attached
            .lock()
            .expect("driver lock poisoned")
            .contains_key(&request.file)
        {
            return Err(StartError::AlreadyLogging(request.file));
        }
        let fifo = pipe::OpenOptions::new()
            .open_receiver(&request.file)
            .map_err(|error| StartError::Fifo {
                path: request.file.clone(),
                error,
            })?;
        let endpoint = self.endpoint_for(&config.endpoint, tls)?;
        let labels = container_labels(&config, info, &self.settings.hostname);
        let buffer = Arc::new(ContainerBuffer::new(
            info.name().to_string(),
            info.short_id().to_string(),
            StreamLabels::new(&labels),
            config.buffer_size,
            self.budget.clone(),
            endpoint.wake(),
            config.endpoint.batch_size,
        ));
        let local_copy = self.open_local_copy(info, &config);
        endpoint.attach(buffer.clone());
        self.attached
            .lock()
            .expect("driver lock poisoned")
            .insert(request.file.clone(), buffer.clone());
        self.save_state(&request, &config);
        tracing::info!(
            container = %info.name(),
            id = %info.short_id(),
            endpoint = %config.endpoint.url,
            labels = %buffer.labels().for_source(crate::line::Source::Stdout),
            "logging started"
        );

        let driver = self.clone();
        let assembler = Assembler::new(self.settings.max_line_size);
        let stop = self.stop_readers.subscribe();
        let reader = tokio::spawn(async move {
            let end = read_fifo(fifo, assembler, &buffer, local_copy.as_deref(), stop).await;
            buffer.close(end == ReadEnd::Eof);
            if let Some(local_copy) = local_copy {
                local_copy.detach();
            }
            if end == ReadEnd::Eof {
                driver
                    .attached
                    .lock()
                    .expect("driver lock poisoned")
                    .remove(&request.file);
                driver.forget_state(&request.file);
            }
        });
        self.tasks
            .lock()
            .expect("driver lock poisoned")
            .push(reader);
        Ok(())
    }

    /// Handles StopLogging: answers at once. The reader goes on to EOF, which
    /// comes when the daemon closes its end after this answer.
    pub fn stop_logging(&self, file: &str) {
        if let Some(buffer) = self
            .attached
            .lock()
            .expect("driver lock poisoned")
            .get(file)
        {
            tracing::debug!(container = %buffer.name(), "StopLogging: reading the FIFO to its end");
        }
    }

    /// Opens the container's local copy unless `no-file` is set. A disk
    /// problem costs `docker logs`, never the container's start.
    fn open_local_copy(
        &self,
        info: &ContainerInfo,
        config: &ContainerConfig,
    ) -> Option<Arc<ContainerLog>> {
        let store = self.store.as_ref().filter(|_| !config.local_copy.no_file)?;
        match store.open_for_writing(&info.container_id, &config.local_copy) {
            Ok(log) => Some(log),
            Err(err) => {
                tracing::warn!(container = %info.name(), error = %err, "cannot keep a local copy; docker logs will not show this run");
                None
            }
        }
    }

    /// Handles ReadLogs: streams the container's local copy as FIFO frames.
    pub fn read_logs(&self, request: ReadLogsRequest) -> Result<mpsc::Receiver<Bytes>, String> {
        let info = &request.info;
        let opts = info.config.clone().unwrap_or_default();
        if ContainerConfig::from_log_opts(&opts).is_ok_and(|config| config.local_copy.no_file) {
            return Err(format!(
                "container {} runs with no-file=true: this plugin keeps no local copy for docker logs; query Loki instead",
                info.name()
            ));
        }
        let store = self
            .store
            .as_ref()
            .ok_or("this plugin runs without a data directory (DATA_DIR): no local copies")?;
        let read = ReadRequest {
            since_ns: parse_time(&request.config.since)?,
            until_ns: parse_time(&request.config.until)?,
            tail: usize::try_from(request.config.tail).ok(),
            follow: request.config.follow,
        };
        let (tx, rx) = mpsc::channel(64);
        store
            .read(&info.container_id, read, tx)
            .map_err(|err| format!("container {}: {err}", info.name()))?;
        Ok(rx)
    }

    /// Every `store_gc_interval`: deletes the local copies of containers
    /// that no longer exist (unless `keep-file`), then keeps the store under
    /// `local_store_size`, oldest files first.
    pub fn start_store_gc(self: &Arc<Self>) {
        let Some(store) = self.store.clone() else {
            return;
        };
        let socket = self.settings.docker_socket.clone();
        let (cap, interval) = (
            self.settings.local_store_size,
            self.settings.store_gc_interval,
        );
        let mut stop = self.stop_readers.subscribe();
        tokio::spawn(async move {
            let mut warned = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.wait_for(|stopping| *stopping) => return,
                }
                if let Some(socket) = &socket {
                    remove_copies_of_removed_containers(&store, socket, &mut warned).await;
                }
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || store.enforce_cap(cap)).await;
            }
        });
    }

    /// The TLS files of an endpoint not set up yet; `None` if it exists.
    async fn tls_for(&self, config: &EndpointConfig) -> Result<Option<TlsMaterial>, StartError> {
        if self
            .endpoints
            .lock()
            .expect("driver lock poisoned")
            .contains_key(config)
        {
            return Ok(None);
        }
        load_tls(&config.tls)
            .await
            .map(Some)
            .map_err(StartError::Client)
    }

    fn endpoint_for(
        &self,
        config: &EndpointConfig,
        tls: Option<TlsMaterial>,
    ) -> Result<Arc<Endpoint>, StartError> {
        let mut endpoints = self.endpoints.lock().expect("driver lock poisoned");
        if let Some(endpoint) = endpoints.get(config) {
            return Ok(endpoint.clone());
        }
        // Endpoints are never removed, so `tls_for` loaded the files.
        let tls = tls.ok_or_else(|| StartError::Client("TLS files not loaded".into()))?;
        let client = LokiClient::new(config, &tls).map_err(StartError::Client)?;
        let endpoint = Endpoint::new(config.clone(), client);
        let batcher = tokio::spawn(endpoint.clone().run(self.drain.subscribe()));
        self.tasks
            .lock()
            .expect("driver lock poisoned")
            .push(batcher);
        endpoints.insert(config.clone(), endpoint.clone());
        Ok(endpoint)
    }

    /// Re-opens the FIFOs recorded in the state directory by an earlier run
    /// of the plugin that did not see them to their end.
    pub async fn reattach(self: &Arc<Self>) {
        let Some(dir) = self.attached_dir() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let request = std::fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<StartLoggingRequest>(&bytes).ok());
            let _ = std::fs::remove_file(&path);
            let Some(mut request) = request else {
                tracing::warn!(file = %path.display(), "ignoring an unreadable attachment record");
                continue;
            };
            if !Path::new(&request.file).exists() {
                continue;
            }
            let name = request.info.name().to_string();
            // Values an older version accepted are moved into range rather
            // than refused, which would leave the container's FIFO unread.
            if let Some(opts) = request.info.config.as_ref() {
                let (opts, changes) = clamp_to_ranges(opts);
                for change in changes {
                    tracing::warn!(container = %name, "re-attaching: {change}");
                }
                request.info.config = Some(opts);
            }
            match self.start_logging(request).await {
                Ok(()) => {
                    tracing::info!(container = %name, "re-attached to a running container's FIFO after a restart")
                }
                Err(err) => {
                    tracing::warn!(container = %name, error = %err, "could not re-attach to a container's FIFO")
                }
            }
        }
    }

    fn attached_dir(&self) -> Option<PathBuf> {
        self.settings
            .data_dir
            .as_ref()
            .map(|dir| dir.join("attached"))
    }

    fn state_file(&self, fifo: &str) -> Option<PathBuf> {
        let dir = self.attached_dir()?;
        let name = Path::new(fifo).file_name()?.to_string_lossy().into_owned();
        Some(dir.join(format!("{name}.json")))
    }

    /// Records an attachment. Only the env variables that become labels are
    /// kept, so no other secret of the container is written down.
    fn save_state(&self, request: &StartLoggingRequest, config: &ContainerConfig) {
        let Some(path) = self.state_file(&request.file) else {
            return;
        };
        let mut record = request.clone();
        if let Some(env) = record.info.env.as_mut() {
            env.retain(|kv| config.wants_env(kv.split_once('=').map_or(kv.as_str(), |(k, _)| k)));
        }
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::create_dir_all(path.parent().expect("state file has a directory"))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(&serde_json::to_vec(&record).expect("request serializes"))
        };
        if let Err(err) = write() {
            tracing::warn!(file = %path.display(), error = %err, "cannot record the attachment; it will not survive a plugin crash");
        }
    }

    fn forget_state(&self, fifo: &str) {
        if let Some(path) = self.state_file(fifo) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Stops reading, delivers what is buffered within the grace period, and
    /// logs what could not be delivered.
    pub async fn shutdown(&self) {
        let deadline = Instant::now() + self.settings.shutdown_grace;
        tracing::info!(grace = ?self.settings.shutdown_grace, "shutting down: flushing buffered lines");
        self.stop_readers.send_replace(true);
        self.drain.send_replace(Some(deadline));
        let tasks = std::mem::take(&mut *self.tasks.lock().expect("driver lock poisoned"));
        let all_done = async {
            for task in tasks {
                let _ = task.await;
            }
        };
        if tokio::time::timeout_at((deadline + Duration::from_millis(500)).into(), all_done)
            .await
            .is_err()
        {
            tracing::warn!("grace period over with lines still buffered");
        }
        for endpoint in self
            .endpoints
            .lock()
            .expect("driver lock poisoned")
            .values()
        {
            endpoint.report_unfinished();
        }
    }
}

/// Deletes the local copies of containers the daemon no longer has (unless
/// `keep-file`). Without an answer from the API nothing is deleted.
async fn remove_copies_of_removed_containers(store: &LocalStore, socket: &Path, warned: &mut bool) {
    let existing = match crate::docker_api::container_ids(socket).await {
        Ok(existing) => existing,
        Err(err) => {
            if !std::mem::replace(warned, true) {
                tracing::warn!(socket = %socket.display(), error = %err,
                    "cannot list containers; local copies of removed containers stay until the store cap removes them");
            }
            return;
        }
    };
    for id in store.stored_containers() {
        if !existing.contains(&id) && store.remove_unless_kept(&id).unwrap_or(false) {
            tracing::info!(id = %id.get(..12).unwrap_or(&id), "removed the local copy of a removed container");
        }
    }
}
