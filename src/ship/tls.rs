//! The files log-opts name: `loki-tls-ca-file`, `loki-tls-cert-file` and
//! `loki-tls-key-file`, and the rustls client configuration built from them.
//!
//! A user who can start a container picks these paths, so reading them must
//! never hurt the plugin, which serves every container on the host:
//!
//! - only a regular file is read: a FIFO, device, directory or socket is
//!   refused before it is opened, and checked again on the opened file
//!   (`O_NONBLOCK`, so even a FIFO swapped in between cannot block the open);
//! - at most [`MAX_TLS_FILE_SIZE`] bytes are read;
//! - reading happens on a thread of its own, never on the async runtime,
//!   and the caller waits at most [`TLS_FILES_TIME_LIMIT`]: a file on a hung
//!   network file system costs one parked thread, never a runtime worker.
//!   At most [`MAX_PARKED_READERS`] such threads may exist at once; past
//!   that, loading fails at once with a clear error.
//!
//! Every failure is a message naming the option and the path.
//!
//! Certificate renewal: [`TlsMaterial::fingerprint`] records the device,
//! inode, size, mtime and ctime of each file as read, and [`fingerprint`]
//! takes the same stamps again, cheaply and off the runtime. When they
//! differ, the files changed: load them again and build a new client config.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::options::TlsOptions;
pub(crate) use crate::files::{FileStamp, file_error, read_regular_file};

/// Largest TLS file read. A CA bundle with every public root is ~220 KiB.
pub const MAX_TLS_FILE_SIZE: u64 = 1 << 20;
/// Longest wait for the TLS files of one StartLogging.
pub const TLS_FILES_TIME_LIMIT: Duration = Duration::from_secs(5);
/// Reader threads that may still be running after their caller gave up.
pub const MAX_PARKED_READERS: usize = 8;

/// The stamps of the CA, certificate and key files (`None`: not used).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TlsFingerprint {
    ca: Option<FileStamp>,
    cert: Option<FileStamp>,
    key: Option<FileStamp>,
}

/// The contents of the TLS files, parsed and checked: enough to build a
/// rustls client configuration without touching the disk again.
#[derive(Clone)]
pub struct TlsMaterial {
    /// `None`: `loki-tls-insecure-skip-verify`, no certificate is checked.
    roots: Option<Arc<RootCertStore>>,
    client_auth: Option<(Vec<CertificateDer<'static>>, Arc<PrivateKeyDer<'static>>)>,
    fingerprint: TlsFingerprint,
}

impl fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsMaterial")
            .field("roots", &self.roots.as_ref().map(|r| r.len()))
            .field(
                "client_certificates",
                &self.client_auth.as_ref().map(|(c, _)| c.len()),
            )
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl TlsMaterial {
    /// The stamps of the files as they were read; compare with [`fingerprint`].
    pub fn fingerprint(&self) -> &TlsFingerprint {
        &self.fingerprint
    }
}

/// Whether `options` names any file to read (and to watch for renewal).
pub fn has_files(options: &TlsOptions) -> bool {
    files(options).iter().any(|(_, path)| path.is_some())
}

/// The files `options` names, with their options, in a fixed order. The CA
/// file is not used (nor read) when verification is skipped.
fn files(options: &TlsOptions) -> [(&'static str, Option<&Path>); 3] {
    [
        (
            "loki-tls-ca-file",
            options
                .ca_file
                .as_deref()
                .filter(|_| !options.insecure_skip_verify),
        ),
        ("loki-tls-cert-file", options.cert_file.as_deref()),
        ("loki-tls-key-file", options.key_file.as_deref()),
    ]
}

/// Reads and parses the TLS files of `options`, off the async runtime and
/// within [`TLS_FILES_TIME_LIMIT`]. Without a CA file, the bundled and
/// system roots are used (loaded once per process).
pub async fn load_tls(options: &TlsOptions) -> Result<TlsMaterial, String> {
    // Nothing to read (or the system roots already loaded): no thread, so
    // reads parked on a hung file system cannot hold up other endpoints.
    if files(options).iter().all(|(_, path)| path.is_none()) {
        let roots = match options.insecure_skip_verify {
            true => Some(None),
            false => SYSTEM_ROOTS.get().cloned().map(Some),
        };
        if let Some(roots) = roots {
            return Ok(TlsMaterial {
                roots,
                client_auth: None,
                fingerprint: TlsFingerprint::default(),
            });
        }
    }
    let options = options.clone();
    READERS
        .run(TLS_FILES_TIME_LIMIT, move |doing| {
            load_blocking(&options, doing)
        })
        .await
}

/// Stamps the TLS files again, off the runtime. `None` when `options` names
/// no file, or when a file cannot be looked at right now (keep the current
/// configuration and look again later).
pub async fn fingerprint(options: &TlsOptions) -> Option<TlsFingerprint> {
    if files(options).iter().all(|(_, path)| path.is_none()) {
        return None;
    }
    let options = options.clone();
    READERS
        .run(TLS_FILES_TIME_LIMIT, move |_| {
            let stamp = |path: Option<&Path>| -> Result<Option<FileStamp>, String> {
                path.map(|p| std::fs::metadata(p).map(|m| FileStamp::of(&m)))
                    .transpose()
                    .map_err(|e| e.to_string())
            };
            let [(_, ca), (_, cert), (_, key)] = files(&options);
            Ok(TlsFingerprint {
                ca: stamp(ca)?,
                cert: stamp(cert)?,
                key: stamp(key)?,
            })
        })
        .await
        .ok()
}

/// Builds the rustls client configuration from loaded material.
pub fn client_config(material: &TlsMaterial) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = match &material.roots {
        Some(roots) => builder.with_root_certificates(roots.clone()),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnyCertificate(provider))),
    };
    match &material.client_auth {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("loki-tls-cert-file and loki-tls-key-file: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// The bundled (webpki) roots plus the system's, loaded once.
static SYSTEM_ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();

fn system_roots() -> Arc<RootCertStore> {
    SYSTEM_ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(roots)
        })
        .clone()
}

fn load_blocking(options: &TlsOptions, doing: &Doing) -> Result<TlsMaterial, String> {
    let [(ca_option, ca), (cert_option, cert), (key_option, key)] = files(options);
    let mut fingerprint = TlsFingerprint::default();
    let roots = if options.insecure_skip_verify {
        None
    } else if let Some(path) = ca {
        doing.set(ca_option, path);
        let (bytes, stamp) = read_regular_file(ca_option, path, MAX_TLS_FILE_SIZE)?;
        fingerprint.ca = Some(stamp);
        let certs = parse_certificates(ca_option, path, &bytes)?;
        let mut roots = RootCertStore::empty();
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(file_error(
                ca_option,
                path,
                "no usable CA certificate in the file",
            ));
        }
        Some(Arc::new(roots))
    } else {
        doing.set_text("loading the system's CA certificates");
        Some(system_roots())
    };
    let client_auth = match (cert, key) {
        (Some(cert), Some(key)) => {
            doing.set(cert_option, cert);
            let (bytes, stamp) = read_regular_file(cert_option, cert, MAX_TLS_FILE_SIZE)?;
            fingerprint.cert = Some(stamp);
            let certs = parse_certificates(cert_option, cert, &bytes)?;
            doing.set(key_option, key);
            let (bytes, stamp) = read_regular_file(key_option, key, MAX_TLS_FILE_SIZE)?;
            fingerprint.key = Some(stamp);
            let private_key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
                file_error(
                    key_option,
                    key,
                    &pem_error(&e, "no private key (PEM) in the file"),
                )
            })?;
            Some((certs, Arc::new(private_key)))
        }
        (None, None) => None,
        // Options refuse one without the other; say so if called otherwise.
        _ => {
            return Err("loki-tls-cert-file and loki-tls-key-file go together".to_string());
        }
    };
    Ok(TlsMaterial {
        roots,
        client_auth,
        fingerprint,
    })
}

fn parse_certificates(
    option: &str,
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(option, path, &pem_error(&e, "no certificate")))?;
    if certs.is_empty() {
        return Err(file_error(
            option,
            path,
            "no certificate (PEM \"BEGIN CERTIFICATE\") in the file",
        ));
    }
    Ok(certs)
}

/// A PEM error without the file's bytes (its Display quotes whole lines,
/// and the file may be anything a user pointed at).
fn pem_error(err: &pem::Error, nothing_found: &str) -> String {
    match err {
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section is not valid base64".into(),
        pem::Error::NoItemsFound => nothing_found.into(),
        pem::Error::Io(e) => e.to_string(),
        _ => "not a valid PEM file".into(),
    }
}

/// Runs blocking file work for the files log-opts name (TLS and credential
/// files) on a thread of its own, within `limit`, with the same bound on
/// threads left behind as the TLS files.
pub(crate) async fn run_off_runtime<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce(&Doing) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    READERS.run(limit, work).await
}

/// What a reader thread is doing, for the error when it takes too long.
#[derive(Default)]
pub(crate) struct Doing(Mutex<String>);

impl Doing {
    pub(crate) fn set(&self, option: &str, path: &Path) {
        self.set_text(&file_error(option, path, "reading"));
    }

    fn set_text(&self, text: &str) {
        *self.0.lock().expect("progress lock poisoned") = text.to_string();
    }

    fn get(&self) -> String {
        self.0.lock().expect("progress lock poisoned").clone()
    }
}

/// Runs blocking file work on threads of its own, with a time limit and a
/// bound on threads left behind by callers who stopped waiting.
struct Readers {
    running: AtomicUsize,
    max: usize,
}

static READERS: Readers = Readers::new(MAX_PARKED_READERS);

/// Counts a reader thread until it ends, however it ends.
struct Running<'a>(&'a AtomicUsize);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Readers {
    const fn new(max: usize) -> Readers {
        Readers {
            running: AtomicUsize::new(0),
            max,
        }
    }

    async fn run<T: Send + 'static>(
        &'static self,
        limit: Duration,
        work: impl FnOnce(&Doing) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        if self.running.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "files named by log-opts: {} earlier reads are still waiting for the file system; try again later",
                self.max
            ));
        }
        let doing = Arc::new(Doing::default());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread_doing = doing.clone();
        let spawned = std::thread::Builder::new()
            .name("option-files".into())
            .spawn(move || {
                let _running = Running(&self.running);
                let _ = tx.send(work(&thread_doing));
            });
        if let Err(err) = spawned {
            self.running.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "files named by log-opts: cannot start a reader thread: {err}"
            ));
        }
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("files named by log-opts: the reader thread failed".into()),
            Err(_) => Err(format!(
                "{}: no answer within {limit:?}; is it on a file system that does not respond?",
                doing.get()
            )),
        }
    }
}

/// `loki-tls-insecure-skip-verify=true`: any certificate is accepted, but
/// handshake signatures are still checked.
mod insecure {
    use std::sync::Arc;

    use rustls::DigitallySignedStruct;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

    #[derive(Debug)]
    pub struct AcceptAnyCertificate(pub Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn ca_option(path: &Path) -> TlsOptions {
        TlsOptions {
            ca_file: Some(path.to_path_buf()),
            ..TlsOptions::default()
        }
    }

    /// Loads with `options`; returns the error and how long it took.
    async fn refused(options: &TlsOptions) -> (String, Duration) {
        let started = Instant::now();
        let err = load_tls(options).await.unwrap_err();
        (err, started.elapsed())
    }

    fn mkfifo(path: &Path) {
        let c_path = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    }

    #[tokio::test]
    async fn special_files_are_refused_at_once_by_option_and_path() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.fifo");
        mkfifo(&fifo);
        let cases: [(&Path, &str); 4] = [
            (Path::new("/dev/zero"), "character device"),
            (Path::new("/dev/urandom"), "character device"),
            (&fifo, "FIFO"),
            (dir.path(), "directory"),
        ];
        for (path, kind) in cases {
            let (err, took) = refused(&ca_option(path)).await;
            assert!(
                err.contains("loki-tls-ca-file")
                    && err.contains(&*path.to_string_lossy())
                    && err.contains(kind),
                "{err}"
            );
            assert!(took < Duration::from_secs(1), "{path:?} took {took:?}");
        }
        // The same checks guard the client certificate and key.
        let options = TlsOptions {
            cert_file: Some("/dev/zero".into()),
            key_file: Some(fifo.clone()),
            ..TlsOptions::default()
        };
        let (err, _) = refused(&options).await;
        assert!(
            err.contains("loki-tls-cert-file") && err.contains("/dev/zero"),
            "{err}"
        );
        let pki = Pki::new();
        let options = TlsOptions {
            cert_file: Some(pki.write("client.pem", &pki.ca_a_pem)),
            key_file: Some(fifo.clone()),
            ..TlsOptions::default()
        };
        let (err, _) = refused(&options).await;
        assert!(
            err.contains("loki-tls-key-file") && err.contains("FIFO"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn large_missing_and_non_pem_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(10 << 20)
            .unwrap();
        let (err, _) = refused(&ca_option(&big)).await;
        assert!(
            err.contains("loki-tls-ca-file") && err.contains("10485760 bytes"),
            "{err}"
        );

        let (err, _) = refused(&ca_option(Path::new("/nonexistent/ca.pem"))).await;
        assert!(
            err.contains("loki-tls-ca-file") && err.contains("/nonexistent/ca.pem"),
            "{err}"
        );

        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "-----BEGIN CERTIFICATE-----\nsecret line\n").unwrap();
        let (err, _) = refused(&ca_option(&text)).await;
        assert!(
            err.contains("loki-tls-ca-file") && err.contains("PEM"),
            "{err}"
        );
        assert!(
            !err.contains("secret line"),
            "file contents are not echoed: {err}"
        );
        std::fs::write(&text, "just words\n").unwrap();
        let (err, _) = refused(&ca_option(&text)).await;
        assert!(err.contains("no certificate"), "{err}");
    }

    #[tokio::test]
    async fn without_files_the_system_roots_are_used() {
        let material = load_tls(&TlsOptions::default()).await.unwrap();
        assert!(material.roots.as_ref().is_some_and(|r| !r.is_empty()));
        assert!(SYSTEM_ROOTS.get().is_some(), "loaded once, then cached");
        client_config(&material).unwrap();
        assert_eq!(fingerprint(&TlsOptions::default()).await, None);
    }

    #[tokio::test]
    async fn skipping_verification_reads_no_ca_file() {
        let options = TlsOptions {
            ca_file: Some("/dev/zero".into()),
            insecure_skip_verify: true,
            ..TlsOptions::default()
        };
        let material = load_tls(&options).await.unwrap();
        assert!(material.roots.is_none());
        client_config(&material).unwrap();
        assert_eq!(fingerprint(&options).await, None, "nothing to watch");
    }

    #[tokio::test]
    async fn slow_file_systems_cost_a_parked_thread_never_a_hang() {
        static SLOW: Readers = Readers::new(2);
        let started = Instant::now();
        let slow = |doing: &Doing| -> Result<(), String> {
            doing.set("loki-tls-ca-file", Path::new("/mnt/hung/ca.pem"));
            std::thread::sleep(Duration::from_millis(1500));
            Ok(())
        };
        let limit = Duration::from_millis(100);
        let err = SLOW.run(limit, slow).await.unwrap_err();
        assert!(
            err.contains("loki-tls-ca-file") && err.contains("/mnt/hung/ca.pem"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_millis(500));
        SLOW.run(limit, slow).await.unwrap_err();
        // Two threads are parked: the next call fails at once.
        let err = SLOW.run(limit, |_| Ok(())).await.unwrap_err();
        assert!(err.contains("still waiting"), "{err}");
        // Once they end, reading works again.
        tokio::time::sleep(Duration::from_millis(1600)).await;
        SLOW.run(limit, |_| Ok(())).await.unwrap();
    }

    /// Two CAs, and a server certificate for `loki.test` from the second.
    struct Pki {
        ca_a_pem: String,
        ca_b_pem: String,
        server_config: Arc<rustls::ServerConfig>,
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn new() -> Pki {
            use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
            let ca = || {
                let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
                params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
            };
            let (ca_a, ca_b) = (ca(), ca());
            let server_key = KeyPair::generate().unwrap();
            let server_cert = CertificateParams::new(vec!["loki.test".to_string()])
                .unwrap()
                .signed_by(&server_key, &ca_b)
                .unwrap();
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let server_config = rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![server_cert.der().clone()],
                    PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap(),
                )
                .unwrap();
            Pki {
                ca_a_pem: ca_a.pem(),
                ca_b_pem: ca_b.pem(),
                server_config: Arc::new(server_config),
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn write(&self, name: &str, text: &str) -> std::path::PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    /// Whether a client with `material` completes a handshake with `addr`.
    async fn handshake(material: &TlsMaterial, addr: std::net::SocketAddr) -> Result<(), String> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(material)?));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("loki.test").unwrap();
        connector
            .connect(name, tcp)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    }

    /// A renewed CA file is noticed by its fingerprint, and a client
    /// rebuilt from the reloaded material trusts the new CA.
    #[tokio::test]
    async fn a_replaced_ca_file_is_noticed_and_used_when_the_client_rebuilds() {
        let pki = Pki::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(pki.server_config.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _ = acceptor.accept(tcp).await;
                });
            }
        });

        let ca_path = pki.write("ca.pem", &pki.ca_a_pem);
        let options = ca_option(&ca_path);
        let old = load_tls(&options).await.unwrap();
        assert_eq!(
            fingerprint(&options).await.as_ref(),
            Some(old.fingerprint())
        );
        let err = handshake(&old, addr).await.unwrap_err();
        assert!(
            err.contains("certificate"),
            "CA A does not trust the server: {err}"
        );

        // Renewal as tools do it: write a new file beside, rename it over.
        let next = pki.write("ca.pem.new", &pki.ca_b_pem);
        std::fs::rename(&next, &ca_path).unwrap();
        let now = fingerprint(&options).await.unwrap();
        assert_ne!(&now, old.fingerprint(), "the change is noticed");
        let new = load_tls(&options).await.unwrap();
        assert_eq!(new.fingerprint(), &now);
        handshake(&new, addr).await.expect("the renewed CA is used");

        // Rewritten in place (same inode) is noticed too.
        std::thread::sleep(Duration::from_millis(20));
        std::fs::write(&ca_path, format!("{}{}", pki.ca_b_pem, pki.ca_a_pem)).unwrap();
        assert_ne!(
            fingerprint(&options).await.as_ref(),
            Some(new.fingerprint())
        );
    }
}
