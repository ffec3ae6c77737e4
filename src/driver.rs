//! The driver wires the stages together for each request; each stage owns
//! its state. StartLogging validates a container's options, opens its FIFO
//! and journal, gives the journal a delivery lane at its endpoint, records
//! the attachment and starts the FIFO's reader. StopLogging only answers:
//! the reader goes on to EOF. ReadLogs reads the journal.
//!
//! After a restart (crash, upgrade, `disable`/`enable`) the recorded FIFOs
//! are read again, resuming where the journal ends; a record whose options
//! no longer validate still has its FIFO drained into the journal, and the
//! log says why nothing goes to Loki. Journals that still hold undelivered
//! lines of containers that stopped meanwhile are delivered too. All of
//! this runs beside the server ([`Driver::start`]), several FIFOs at once,
//! so dockerd is answered at once however many containers there are.
//!
//! A FIFO is always read: a journal that cannot be opened (a full disk)
//! becomes a memory-only one, and a lane that cannot be attached at
//! re-attach (its client cannot be made yet) is tried again with a backoff
//! while the lines wait in the journal.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::task::TaskTracker;

use crate::attachments::{self, Attachments};
use crate::config::labels::{
    StreamLabels, container_labels, name_collisions, refused_by_loki, structured_metadata,
    warned_by_loki,
};
use crate::config::options::{ContainerConfig, OptionError, clamp_to_ranges};
use crate::config::settings::Settings;
use crate::config::time::parse_time;
use crate::feed::Feed;
use crate::ingest::{ReadEnd, Reader, open_fifo};
use crate::journal::{JournalConfig, ReadError, ReadRequest, Store, StoreSettings};
use crate::observe::ContainerCounters;
use crate::proto::logproto::LabelPairAdapter;
use crate::protocol::{ContainerInfo, ReadLogsRequest, StartLoggingRequest, short_id};
use crate::ship::Shipper;
use crate::ship::endpoint::Lane;

/// After a restart, records this far back in a journal are compared with
/// what the FIFO still holds (the FIFO is at most 1 MiB).
const RESUME_WINDOW: u64 = 2 << 20;
/// How long a restarted container's new FIFO waits for the plugin to read
/// its old one to the end (see [`Journal::line_up_reader`]). What is left
/// there is at most a pipe's worth: milliseconds, or as long as a reader
/// leaves bytes the disk has not confirmed in its FIFO (1 s, then it reads
/// on). The new FIFO holds as much meanwhile before the container waits.
const EARLIER_FIFO_WAIT: Duration = Duration::from_secs(2);
/// FIFOs re-attached at once after a start.
const REATTACH_AT_ONCE: usize = 16;
/// `docker logs` requests served at once.
const MAX_LOG_READERS: usize = 64;
/// A lane that could not be attached is tried again after this, doubling
/// up to [`RETRY_LANE_MAX`].
const RETRY_LANE_MIN: Duration = Duration::from_secs(1);
const RETRY_LANE_MAX: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Options(#[from] OptionError),
    #[error("already logging to {0}")]
    AlreadyLogging(String),
    #[error("cannot open the log FIFO {path}: {error}")]
    Fifo { path: String, error: std::io::Error },
    #[error("cannot keep this container's journal: {0}")]
    Journal(std::io::Error),
    #[error("cannot set up the Loki client: {0}")]
    Client(String),
    #[error("{0}")]
    Labels(String),
    #[error("the plugin is shutting down")]
    ShuttingDown,
}

/// How a FIFO is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attach {
    /// From StartLogging.
    Fresh,
    /// From a record, after a restart: the FIFO may hold frames the
    /// journal already has.
    Resume,
}

pub struct Driver {
    settings: Settings,
    store: Arc<Store>,
    shipper: Arc<Shipper>,
    attachments: Option<Attachments>,
    /// FIFOs being read, by the path the daemon sent.
    reading: Mutex<HashMap<String, String>>,
    readers: TaskTracker,
    stop_readers: watch::Sender<bool>,
    /// Re-attaching and the backlog checks after a start (see [`Driver::start`]).
    startup: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Driver {
    pub fn new(settings: Settings) -> Arc<Driver> {
        let idle = settings.endpoint_idle;
        Driver::with_shipper(settings, Shipper::http(idle))
    }

    /// With another way to reach Loki (tests).
    pub fn with_shipper(settings: Settings, shipper: Arc<Shipper>) -> Arc<Driver> {
        let store = Store::new(
            settings.data_dir.as_ref().map(|d| d.join("journal")),
            StoreSettings {
                disk_limit: settings.local_store_size,
                max_age: settings.local_store_max_age,
                memory_limit: settings.total_buffer_size,
                max_readers: MAX_LOG_READERS,
            },
        );
        Arc::new(Driver {
            attachments: settings
                .data_dir
                .as_ref()
                .map(|d| Attachments::new(d.join("attached"))),
            store,
            shipper,
            settings,
            reading: Mutex::new(HashMap::new()),
            readers: TaskTracker::new(),
            stop_readers: watch::channel(false).0,
            startup: Mutex::new(None),
        })
    }

    /// Starts the work of a plugin start in the background: re-attaching
    /// the FIFOs an earlier run read, delivering what stored journals hold,
    /// then the store's collector. The socket is served meanwhile, so
    /// dockerd's requests (Capabilities, a new StartLogging) are answered
    /// at once, however many containers there are to find again.
    pub fn start(self: &Arc<Self>) {
        let driver = self.clone();
        let task = tokio::spawn(async move {
            let started = std::time::Instant::now();
            driver.reattach().await;
            tracing::debug!(took = ?started.elapsed(), "re-attach and backlog checks done");
            driver.start_store_gc();
        });
        *self.startup.lock().expect("driver lock poisoned") = Some(task);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn shipper(&self) -> &Arc<Shipper> {
        &self.shipper
    }

    /// FIFOs being read now (metrics).
    pub fn open_fifos(&self) -> usize {
        self.reading.lock().expect("driver lock poisoned").len()
    }

    /// Handles StartLogging: returns within milliseconds and opens no
    /// network connection (TLS files are read off the runtime, bounded by
    /// [`crate::ship::tls::TLS_FILES_TIME_LIMIT`]).
    pub async fn start_logging(
        self: &Arc<Self>,
        request: StartLoggingRequest,
    ) -> Result<(), StartError> {
        let opts = request.info.config.clone().unwrap_or_default();
        let config = self.container_config(&request.info, &opts)?;
        self.check_labels(&config, &request.info)?;
        // Once per container start: options that do nothing, a loki-url host
        // that does not resolve from the host's network.
        for warning in crate::config::hints::attribute_warnings(&config.labels, &config.env) {
            tracing::warn!(container = %request.info.name(), "{warning}");
        }
        crate::ship::client::check_host_resolves(&config.endpoint, request.info.name());
        self.attach(request, Ok(config), Attach::Fresh).await
    }

    /// Refuses a container whose every line Loki would refuse for its
    /// labels (too many, too long with Loki's default limits), or whose
    /// labels would silently merge once made valid. Only at StartLogging:
    /// a container re-attached after a restart keeps being read.
    fn check_labels(
        &self,
        config: &ContainerConfig,
        info: &ContainerInfo,
    ) -> Result<(), StartError> {
        if let Some(collision) = name_collisions(config, info).into_iter().next() {
            return Err(StartError::Labels(collision));
        }
        let mut labels = container_labels(config, info, &self.settings.hostname);
        if let Some(rules) = &config.relabel
            && !rules.apply(&mut labels)
        {
            return Ok(()); // nothing goes to Loki
        }
        if let Some(why) = warned_by_loki(&labels) {
            tracing::warn!(container = %info.name(), "{why}");
        }
        match refused_by_loki(&labels) {
            // Pipeline stages may drop or shorten labels before they are
            // pushed: warn, and let Loki's answers count what it refuses.
            Some(why) if config.pipeline.is_some() => {
                tracing::warn!(container = %info.name(), "{why} (before this container's pipeline stages, which may change its labels)");
                Ok(())
            }
            Some(why) => Err(StartError::Labels(why)),
            None => Ok(()),
        }
    }

    /// A container's validated configuration: its own log-opts over the
    /// plugin-wide defaults (`LOG_OPTS`), with what depends on the
    /// container (a templated tenant) rendered.
    fn container_config(
        &self,
        info: &ContainerInfo,
        opts: &HashMap<String, String>,
    ) -> Result<ContainerConfig, OptionError> {
        let opts = self.settings.log_opts_for(opts);
        ContainerConfig::from_log_opts_in(&opts, &self.settings.option_context())?
            .resolve(info, &self.settings.hostname)
    }

    /// A container's lane at its endpoint: its labels (relabelled once, if
    /// the container has rules), structured metadata and pipeline.
    fn lane(
        &self,
        journal: Arc<crate::journal::Journal>,
        config: &ContainerConfig,
        info: &ContainerInfo,
    ) -> Lane {
        let hostname = &self.settings.hostname;
        let mut labels = container_labels(config, info, hostname);
        let kept = config
            .relabel
            .as_ref()
            .is_none_or(|rules| rules.apply(&mut labels));
        let metadata = structured_metadata(config, info, hostname)
            .into_iter()
            .map(|(name, value)| LabelPairAdapter { name, value })
            .collect();
        let labels = StreamLabels::new(&labels);
        let feed = match (&config.pipeline, kept) {
            (None, true) => Feed::plain(journal, labels, metadata),
            (pipeline, kept) => {
                if !kept {
                    tracing::info!(
                        container = %info.name(),
                        "loki-relabel-config drops this container: its lines are kept for docker logs and counted as filtered, none goes to Loki"
                    );
                }
                let pipeline = pipeline.as_ref().map_or_else(
                    || {
                        crate::process::Pipeline::parse_inline("", &crate::process::NoFiles)
                            .expect("an empty pipeline")
                    },
                    |p| p.fresh(),
                );
                Feed::processed(journal, labels, metadata, pipeline, !kept)
            }
        };
        Lane::new(feed)
    }

    /// Starts delivering `journal` unless a lane delivers it already
    /// (`Ok(false)`); a lane that cannot be attached gives its claim back.
    async fn deliver(
        &self,
        journal: &Arc<crate::journal::Journal>,
        config: &ContainerConfig,
        info: &ContainerInfo,
    ) -> Result<bool, String> {
        if !journal.claim_lane() {
            return Ok(false);
        }
        let lane = self.lane(journal.clone(), config, info);
        match self.shipper.attach(&config.endpoint, lane).await {
            Ok(()) => Ok(true),
            Err(err) => {
                journal.unclaim_lane();
                Err(err)
            }
        }
    }

    /// Attaches `journal`'s lane once its endpoint's client can be made,
    /// trying again from 1 s up to every minute, until the plugin stops.
    /// Until then its lines wait in the journal.
    fn deliver_later(
        self: &Arc<Self>,
        journal: Arc<crate::journal::Journal>,
        config: ContainerConfig,
        info: ContainerInfo,
    ) {
        let driver = self.clone();
        let mut stop = self.stop_readers.subscribe();
        tokio::spawn(async move {
            let mut wait = RETRY_LANE_MIN;
            let mut warning = crate::observe::Throttle::new(Duration::from_secs(300));
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.wait_for(|stopping| *stopping) => return,
                }
                match driver.deliver(&journal, &config, &info).await {
                    Ok(_) => {
                        tracing::info!(container = %info.name(), "delivery to Loki started");
                        return;
                    }
                    Err(err) => {
                        if let Some(suppressed) = warning.allow(std::time::Instant::now()) {
                            tracing::warn!(container = %info.name(), error = %err, similar_suppressed = suppressed, "still cannot make the Loki client; lines wait in the journal");
                        }
                        wait = (wait * 2).min(RETRY_LANE_MAX);
                    }
                }
            }
        });
    }

    async fn attach(
        self: &Arc<Self>,
        request: StartLoggingRequest,
        config: Result<ContainerConfig, String>,
        mode: Attach,
    ) -> Result<(), StartError> {
        if *self.stop_readers.borrow() {
            return Err(StartError::ShuttingDown);
        }
        let info = &request.info;
        let id = info.container_id.clone();
        let name = info.name().to_string();
        {
            let mut reading = self.reading.lock().expect("driver lock poisoned");
            if reading.contains_key(&request.file) {
                return Err(StartError::AlreadyLogging(request.file));
            }
            reading.insert(request.file.clone(), id.clone());
        }
        let fifo = match open_fifo(&request.file) {
            Ok(fifo) => fifo,
            Err(error) => {
                forget_file(self, &request.file);
                return Err(StartError::Fifo {
                    path: request.file.clone(),
                    error,
                });
            }
        };
        // The endpoint first: a container whose options cannot reach Loki
        // (an unreadable TLS file) is refused before anything is created.
        // At re-attach the FIFO is read whatever happens, and the lane is
        // attached later (see `deliver_later`).
        let mut client_error = None;
        if let Ok(config) = &config
            && let Err(err) = self.shipper.prepare(&config.endpoint).await
        {
            if mode == Attach::Fresh {
                forget_file(self, &request.file);
                return Err(StartError::Client(err));
            }
            client_error = Some(err);
        }
        let record = attachments::redacted(&request, config.as_ref().ok());
        let journal_config = self.journal_config(config.as_ref().ok());
        // Beside the journal, which outlives the container: no credential.
        let meta = serde_json::to_vec(&attachments::without_credentials(&record))
            .expect("a request serializes");
        let store = self.store.clone();
        let (journal_id, journal_name) = (id.clone(), name.clone());
        let counters = Arc::new(ContainerCounters::of_container(info));
        let resumed = mode == Attach::Resume;
        let opened = tokio::task::spawn_blocking(move || {
            let opened = store.open(
                &journal_id,
                &journal_name,
                journal_config.clone(),
                counters.clone(),
                Some(&meta),
            );
            match opened {
                // A FIFO found again is read whatever its record says.
                Err(err) if resumed => {
                    tracing::warn!(container = %journal_name, error = %err, "the attachment record names no valid container: its FIFO is read, and its lines go to Loki from memory only");
                    Ok(store.open_in_memory(&journal_id, &journal_name, journal_config, counters))
                }
                other => other,
            }
        })
        .await
        .expect("opening a journal does not panic");
        // A journal that cannot be written or read is opened for
        // memory-only delivery by the store itself (the FIFO is always
        // read): only an invalid ID fails.
        let journal = match opened {
            Ok(journal) => journal,
            Err(err) => {
                forget_file(self, &request.file);
                return Err(StartError::Journal(err));
            }
        };
        journal.attach_reader();
        // Before delivery starts: it must know which line the reader takes over.
        let resume = match mode {
            Attach::Fresh => None,
            Attach::Resume => {
                let journal = journal.clone();
                tokio::task::spawn_blocking(move || journal.resume_point(RESUME_WINDOW))
                    .await
                    .ok()
            }
        };
        let delivered = match (&config, client_error) {
            (Ok(config), None) => self
                .deliver(&journal, config, info)
                .await
                .map(|_| Some(config)),
            (Ok(_), Some(err)) => Err(err),
            (Err(why), _) => Err(why.clone()),
        };
        let delivered = match (delivered, mode) {
            (Ok(config), _) => config,
            (Err(err), Attach::Fresh) => {
                journal.detach_reader(false);
                forget_file(self, &request.file);
                return Err(StartError::Client(err));
            }
            (Err(err), Attach::Resume) if config.is_ok() => {
                // Transient (a TLS file slow to read, too many reads
                // waiting): the lane is attached later, with a backoff.
                tracing::warn!(
                    container = %name,
                    error = %err,
                    "re-attached: the FIFO is read into the journal; delivery to Loki starts once its client can be made (trying again)"
                );
                if let Ok(config) = &config {
                    self.deliver_later(journal.clone(), config.clone(), info.clone());
                }
                None
            }
            (Err(why), Attach::Resume) => {
                tracing::warn!(
                    container = %name,
                    reason = %why,
                    "re-attached: the FIFO is read into the journal (for docker logs), but nothing goes to Loki"
                );
                None
            }
        };
        if let Some(attachments) = self.attachments.clone() {
            let saved = tokio::task::spawn_blocking(move || attachments.save(&record)).await;
            if let Ok(Err(err)) = saved {
                tracing::warn!(container = %name, error = %err, "cannot record the attachment; it will not survive a plugin restart");
            }
        }
        let reader = Reader::new(fifo, journal.clone(), self.settings.max_line_size, resume);
        if let Some(config) = delivered {
            tracing::info!(
                container = %name,
                id = %info.short_id(),
                endpoint = %config.endpoint.url,
                resumed = mode == Attach::Resume,
                "logging started"
            );
        }
        let driver = self.clone();
        let mut stop = self.stop_readers.subscribe();
        let file = request.file.clone();
        // A restarted container: its old FIFO is read to the end first. (A
        // FIFO found again after a plugin restart is read at once: which of
        // a container's FIFOs is the old one is not known then.)
        let (ended, end) = oneshot::channel();
        let earlier = journal
            .line_up_reader(end)
            .filter(|_| mode == Attach::Fresh);
        self.readers.spawn(async move {
            if let Some(earlier) = earlier {
                tokio::select! {
                    done = tokio::time::timeout(EARLIER_FIFO_WAIT, earlier) => if done.is_err() {
                        tracing::warn!(container = %name, waited = ?EARLIER_FIFO_WAIT, "the container's earlier FIFO is still being read: its new FIFO is read beside it, and a long line left unfinished in the old one may be cut or sent twice");
                    },
                    _ = stop.wait_for(|stopping| *stopping) => {}
                }
            }
            let end = reader.run(stop).await;
            drop(ended);
            if end == ReadEnd::Eof
                && let Some(attachments) = driver.attachments.clone()
            {
                let file = file.clone();
                let _ = tokio::task::spawn_blocking(move || attachments.remove(&file)).await;
            }
            forget_file(&driver, &file);
        });
        Ok(())
    }

    fn journal_config(&self, config: Option<&ContainerConfig>) -> JournalConfig {
        let defaults;
        let config = match config {
            Some(config) => config,
            None => {
                defaults = ContainerConfig::from_log_opts(
                    &[("loki-url".to_string(), "http://unset/".to_string())]
                        .into_iter()
                        .collect(),
                )
                .expect("the defaults are valid");
                &defaults
            }
        };
        JournalConfig {
            max_size: config.local_copy.max_size,
            max_file: config.local_copy.max_file,
            no_file: config.local_copy.no_file,
            keep_file: config.local_copy.keep_file,
            disk_limit: config.journal_size,
            memory_limit: config.buffer_size,
            journaled_memory: config.journaled_memory,
            max_line: self.settings.max_line_size,
        }
    }

    /// Handles StopLogging: answers at once. The reader goes on to EOF,
    /// which comes when the daemon closes its end after this answer.
    pub fn stop_logging(&self, file: &str) {
        if let Some(id) = self.reading.lock().expect("driver lock poisoned").get(file) {
            tracing::debug!(id = %short_id(id), "StopLogging: reading the FIFO to its end");
        }
    }

    /// Handles ReadLogs: streams the container's journal as FIFO frames.
    pub fn read_logs(&self, request: ReadLogsRequest) -> Result<mpsc::Receiver<Bytes>, String> {
        let info = &request.info;
        let opts = self
            .settings
            .log_opts_for(&info.config.clone().unwrap_or_default());
        if ContainerConfig::from_log_opts_in(&opts, &self.settings.option_context())
            .is_ok_and(|config| config.local_copy.no_file)
        {
            return Err(format!(
                "container {} runs with no-file=true: this plugin keeps no copy for docker logs; query Loki instead",
                info.name()
            ));
        }
        if self.store.root().is_none() {
            return Err(
                "this plugin runs without a data directory (DATA_DIR): no copies for docker logs"
                    .into(),
            );
        }
        let read = ReadRequest {
            since_ns: parse_time(&request.config.since)?,
            until_ns: parse_time(&request.config.until)?,
            tail: usize::try_from(request.config.tail).ok(),
            follow: request.config.follow,
        };
        self.store
            .read_logs(&info.container_id, read, self.settings.max_line_size)
            .map_err(|err| match err {
                ReadError::NotFound => {
                    format!("container {}: no logs kept by this plugin", info.name())
                }
                other => format!("container {}: {other}", info.name()),
            })
    }

    /// Re-opens the FIFOs recorded by an earlier run, then delivers what
    /// journals of stopped containers still hold.
    pub async fn reattach(self: &Arc<Self>) {
        if let Some(data_dir) = self.settings.data_dir.clone() {
            // Copies kept by version 0.1 become journals first.
            let store = self.store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                crate::journal::migrate_legacy(&data_dir.join("logs"), &data_dir.join("journal"));
                store.warn_strangers();
            })
            .await;
        }
        // Records of containers that ended while the plugin was away.
        let mut ended = HashMap::new();
        if let Some(attachments) = &self.attachments {
            let attachments = attachments.clone();
            let (records, unreadable) = tokio::task::spawn_blocking(move || attachments.load())
                .await
                .unwrap_or_default();
            for (path, why) in unreadable {
                tracing::warn!(file = %path.display(), reason = %why, "deleting an attachment record that cannot be used");
                if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    let _ = std::fs::remove_file(path);
                }
            }
            // Several at once: each waits on the disk (opening the journal,
            // finding where the FIFO resumes), rarely on the CPU.
            let slots = Arc::new(tokio::sync::Semaphore::new(REATTACH_AT_ONCE));
            let mut attaching = tokio::task::JoinSet::new();
            for (path, mut request) in records {
                if *self.stop_readers.borrow() {
                    break;
                }
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    break;
                };
                let name = request.info.name().to_string();
                // An older version's name for the record: it goes once the
                // record is written again under the current one.
                let renamed = self
                    .attachments
                    .as_ref()
                    .and_then(|a| a.path(&request.file))
                    != Some(path.clone());
                if !Path::new(&request.file).exists() {
                    // The container ended while the plugin was away; its
                    // journal is delivered below, with the options of this
                    // record (container.json has no credentials).
                    let _ = std::fs::remove_file(&path);
                    ended.insert(request.info.container_id.clone(), request);
                    continue;
                }
                // Values an older version accepted are moved into range
                // rather than refused, which would leave lines unread.
                if let Some(opts) = request.info.config.as_ref() {
                    let (opts, changes) = clamp_to_ranges(opts);
                    for change in changes {
                        tracing::warn!(container = %name, "re-attaching: {change}");
                    }
                    request.info.config = Some(opts);
                }
                let opts = request.info.config.clone().unwrap_or_default();
                let config = self
                    .container_config(&request.info, &opts)
                    .map_err(|e| e.to_string());
                let driver = self.clone();
                attaching.spawn(async move {
                    match driver.attach(request, config, Attach::Resume).await {
                        Ok(()) => {
                            if renamed {
                                let _ = std::fs::remove_file(&path);
                            }
                        }
                        Err(err) => {
                            tracing::warn!(container = %name, error = %err, "could not re-attach to a container's FIFO")
                        }
                    }
                    drop(slot);
                });
            }
            while attaching.join_next().await.is_some() {}
        }
        if !*self.stop_readers.borrow() {
            self.deliver_backlogs(ended).await;
        }
    }

    /// Journals that hold undelivered lines but no FIFO feeds (their
    /// container stopped while Loki was away, then the plugin restarted).
    /// Their options come from the attachment record if the container
    /// ended while the plugin was away (`ended`), else from the journal's
    /// `container.json`; if that is damaged, from `LOG_OPTS` (the lines are
    /// then labelled with the container's short ID).
    async fn deliver_backlogs(self: &Arc<Self>, mut ended: HashMap<String, StartLoggingRequest>) {
        let store = self.store.clone();
        let pending = tokio::task::spawn_blocking(move || {
            store
                .stored()
                .into_iter()
                .filter(|id| store.get(id).is_none() && store.has_undelivered(id))
                .map(|id| {
                    let meta = store.meta(&id);
                    (id, meta)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (id, meta) in pending {
            if *self.stop_readers.borrow() {
                return;
            }
            let from_meta = meta.map_err(|e| e.to_string()).and_then(|bytes| {
                serde_json::from_slice::<StartLoggingRequest>(&bytes)
                    .map_err(|_| "it is not a StartLogging request".to_string())
            });
            let request = match (ended.remove(&id), from_meta) {
                (Some(record), _) => record,
                (None, Ok(request)) => request,
                (None, Err(why)) => {
                    let dir = self
                        .store
                        .root()
                        .map(|r| r.join(&id).join(crate::journal::META_FILE));
                    let shown = dir.as_deref().map(Path::display);
                    if self.settings.log_opts.is_empty() {
                        tracing::warn!(id = %short_id(&id), record = %shown.map(|d| d.to_string()).unwrap_or_default(), reason = %why,
                            "a journal holds undelivered lines, but the record of its container's options cannot be used and LOG_OPTS names no loki-url; they stay for docker logs");
                        continue;
                    }
                    tracing::warn!(id = %short_id(&id), record = %shown.map(|d| d.to_string()).unwrap_or_default(), reason = %why,
                        "the record of a stopped container's options cannot be used; its undelivered lines go with the LOG_OPTS defaults, container_name set to its ID");
                    StartLoggingRequest {
                        file: String::new(),
                        info: ContainerInfo {
                            container_id: id.clone(),
                            container_name: format!("/{}", short_id(&id)),
                            ..ContainerInfo::default()
                        },
                    }
                }
            };
            let config = match self.salvaged_config(&request.info) {
                Ok((config, dropped)) => {
                    if !dropped.is_empty() {
                        tracing::warn!(id = %short_id(&id), left_out = ?dropped, "a journal holds undelivered lines, but some of its options no longer validate; they are delivered without them");
                    }
                    config
                }
                Err(err) => {
                    tracing::warn!(id = %short_id(&id), error = %err, "a journal holds undelivered lines, but its options no longer validate; they stay for docker logs");
                    continue;
                }
            };
            let store = self.store.clone();
            let journal_config = self.journal_config(Some(&config));
            let name = request.info.name().to_string();
            let journal_id = id.clone();
            let counters = Arc::new(ContainerCounters::of_container(&request.info));
            let opened = tokio::task::spawn_blocking(move || {
                store.open(&journal_id, &name, journal_config, counters, None)
            })
            .await;
            let Ok(Ok(journal)) = opened else { continue };
            match self.deliver(&journal, &config, &request.info).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::info!(container = %request.info.name(), "delivering lines an earlier run left undelivered")
                }
                Err(err) => {
                    tracing::warn!(container = %request.info.name(), error = %err, "cannot deliver lines an earlier run left yet; trying again");
                    self.deliver_later(journal, config, request.info.clone());
                }
            }
        }
    }

    /// The configuration of a stopped container whose lines an earlier run
    /// left: its recorded options moved into range, and those that do not
    /// validate any more (an option this version refuses, a record
    /// damaged on disk) left out, named in the second value.
    fn salvaged_config(
        &self,
        info: &ContainerInfo,
    ) -> Result<(ContainerConfig, Vec<String>), OptionError> {
        let (mut opts, _) = clamp_to_ranges(&info.config.clone().unwrap_or_default());
        let mut dropped = Vec::new();
        loop {
            let err = match self.container_config(info, &opts) {
                Ok(config) => return Ok((config, dropped)),
                Err(err) => err,
            };
            let keys: Vec<String> = match &err {
                OptionError::Unknown { key } | OptionError::Invalid { key, .. } => {
                    vec![key.clone()]
                }
                OptionError::Conflict { keys, .. } => {
                    keys.split(" and ").map(str::to_string).collect()
                }
                OptionError::Missing { .. } => return Err(err),
            };
            let before = opts.len();
            opts.retain(|key, _| !keys.contains(key));
            if opts.len() == before {
                return Err(err); // not one of the container's own options
            }
            dropped.extend(keys);
        }
    }

    /// Every `STORE_GC_INTERVAL`: applies the journal store's bounds, and
    /// (with the Docker API) deletes journals of removed containers.
    pub fn start_store_gc(self: &Arc<Self>) {
        if self.store.root().is_none() {
            return;
        }
        let store = self.store.clone();
        let socket = self.settings.docker_socket.clone();
        let interval = self.settings.store_gc_interval;
        let mut stop = self.stop_readers.subscribe();
        if socket.is_none() {
            let mounted = std::fs::symlink_metadata(crate::config::settings::DOCKER_API_MOUNT)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
            if mounted {
                tracing::info!(
                    "the docker-api mount is a socket but DOCKER_SOCKET is empty: no Docker API call is made; to delete removed containers' journals, docker plugin set loki DOCKER_SOCKET={}",
                    crate::config::settings::DOCKER_API_MOUNT
                );
            }
        }
        tokio::spawn(async move {
            let mut warned = false;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stop.wait_for(|stopping| *stopping) => return,
                }
                let existing = match &socket {
                    Some(socket) => match crate::docker_api::container_ids(socket).await {
                        Ok(ids) => Some(ids),
                        Err(err) => {
                            if !std::mem::replace(&mut warned, true) {
                                tracing::warn!(socket = %socket.display(), error = %err,
                                    "cannot list containers (is the docker-api mount's source the Docker socket?); journals of removed containers stay until the store's bounds remove them");
                            }
                            None
                        }
                    },
                    None => None,
                };
                let store = store.clone();
                let _ = tokio::task::spawn_blocking(move || store.collect(existing.as_ref())).await;
            }
        });
    }

    /// Stops reading (what is not on disk stays in the FIFOs for the next
    /// process), delivers what is pending within the grace period, and
    /// writes the cursors.
    pub async fn shutdown(&self) {
        let grace = self.settings.shutdown_grace;
        tracing::info!(?grace, "shutting down: delivering what is pending");
        self.stop_readers.send_replace(true);
        // Re-attaching stops at the next container; readers it started
        // stop with the others.
        let startup = self.startup.lock().expect("driver lock poisoned").take();
        if let Some(startup) = startup
            && tokio::time::timeout(Duration::from_secs(5), startup)
                .await
                .is_err()
        {
            tracing::warn!("re-attaching did not stop in time");
        }
        self.readers.close();
        if tokio::time::timeout(Duration::from_secs(5), self.readers.wait())
            .await
            .is_err()
        {
            tracing::warn!("FIFO readers did not stop in time");
        }
        let deadline = tokio::time::Instant::now()
            .checked_add(grace)
            .unwrap_or_else(tokio::time::Instant::now);
        self.shipper.drain(deadline).await;
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.flush()).await;
    }
}

fn forget_file(driver: &Driver, file: &str) {
    driver
        .reading
        .lock()
        .expect("driver lock poisoned")
        .remove(file);
}

#[cfg(test)]
mod tests;
