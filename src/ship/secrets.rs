//! Credentials for Loki's `Authorization` header, from log-opts or from the
//! files `loki-password-file` and `loki-bearer-token-file` name.
//!
//! A credential file is read like a TLS file (see [`super::tls`]): off the
//! async runtime, within [`TLS_FILES_TIME_LIMIT`], a regular file only, at
//! most [`MAX_SECRET_FILE_SIZE`] bytes. It must lie in the secrets directory
//! (the plugin's `secrets` mount), symlinks resolved, so an option cannot
//! make the plugin send some other file of its own as a password. Leading
//! and trailing whitespace (the newline an editor adds) is taken off.
//!
//! Errors name the option and the path, never the content; the header
//! built from it is marked sensitive. The file's stamp (device, inode,
//! size, times) tells when it was replaced: a rotated token is used from
//! the next check on (see [`super::client::ReloadingClient`]).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use hyper::header::HeaderValue;

use super::tls::{
    Doing, FileStamp, TLS_FILES_TIME_LIMIT, file_error, read_regular_file, run_off_runtime,
};
use crate::config::options::{Auth, Secret};

/// Largest credential file read: a password or token is a line.
pub const MAX_SECRET_FILE_SIZE: u64 = 64 << 10;

/// The stamp of the credential file as read (`None`: no file).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SecretFingerprint(Option<FileStamp>);

/// The `Authorization` header of an endpoint, ready to send.
#[derive(Clone, Default)]
pub struct Credentials {
    pub authorization: Option<HeaderValue>,
    pub fingerprint: SecretFingerprint,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// The file `auth` takes its secret from: the option, the path and the
/// directory it must stay in.
fn file_of(auth: Option<&Auth>) -> Option<(&'static str, &Path, &Path)> {
    let secret = match auth? {
        Auth::Basic { password, .. } => password,
        Auth::Bearer(token) => token,
    };
    match secret {
        Secret::File { option, path, dir } => Some((option, path, dir)),
        Secret::Inline(_) => None,
    }
}

/// Whether `auth` takes its secret from a file (to watch for rotation).
pub fn has_file(auth: Option<&Auth>) -> bool {
    file_of(auth).is_some()
}

/// Builds the `Authorization` header of `auth`, reading its file if it has
/// one (off the runtime, bounded).
pub async fn load(auth: Option<&Auth>) -> Result<Credentials, String> {
    let Some(auth) = auth else {
        return Ok(Credentials::default());
    };
    let (secret, stamp) = match file_of(Some(auth)) {
        None => (None, None),
        Some((option, path, dir)) => {
            let (option, path, dir) = (option, path.to_path_buf(), dir.to_path_buf());
            let (value, stamp) = run_off_runtime(TLS_FILES_TIME_LIMIT, move |doing| {
                read_secret(option, &path, &dir, doing)
            })
            .await?;
            (Some(value), Some(stamp))
        }
    };
    let value = |s: &Secret| match (s, &secret) {
        (Secret::Inline(v), _) => v.clone(),
        (Secret::File { .. }, Some(read)) => read.clone(),
        (Secret::File { .. }, None) => unreachable!("a file secret is read above"),
    };
    let header = match auth {
        Auth::Basic { username, password } => {
            let token = base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", value(password)));
            HeaderValue::from_str(&format!("Basic {token}")).expect("base64 is a valid header")
        }
        Auth::Bearer(token) => {
            let option = file_of(Some(auth)).map_or("loki-bearer-token", |(o, _, _)| o);
            HeaderValue::from_str(&format!("Bearer {}", value(token)))
                .map_err(|_| format!("{option}: the token is not a valid HTTP header value"))?
        }
    };
    let mut header = header;
    header.set_sensitive(true);
    Ok(Credentials {
        authorization: Some(header),
        fingerprint: SecretFingerprint(stamp),
    })
}

/// Stamps the credential file again, off the runtime. `None` when there is
/// no file, or it cannot be looked at now (keep what was read).
pub async fn fingerprint(auth: Option<&Auth>) -> Option<SecretFingerprint> {
    let (_, path, _) = file_of(auth)?;
    let path = path.to_path_buf();
    run_off_runtime(TLS_FILES_TIME_LIMIT, move |_| {
        std::fs::metadata(&path)
            .map(|m| SecretFingerprint(Some(FileStamp::of(&m))))
            .map_err(|e| e.to_string())
    })
    .await
    .ok()
}

/// Reads a credential file (blocking): inside `dir` once symlinks are
/// resolved, a regular file of at most [`MAX_SECRET_FILE_SIZE`] bytes of
/// UTF-8 text, one non-empty value without control characters.
fn read_secret(
    option: &str,
    path: &Path,
    dir: &Path,
    doing: &Doing,
) -> Result<(String, FileStamp), String> {
    doing.set(option, path);
    let fail = |why: &str| file_error(option, path, why);
    let real_dir = std::fs::canonicalize(dir).map_err(|e| {
        fail(&format!(
            "the secrets directory {} cannot be used: {e}",
            dir.display()
        ))
    })?;
    let real = std::fs::canonicalize(path).map_err(|e| fail(&e.to_string()))?;
    if !real.starts_with(&real_dir) {
        return Err(fail(&format!(
            "leads out of the secrets directory {} (through a symlink)",
            dir.display()
        )));
    }
    let (bytes, stamp) = read_regular_file(option, &real, MAX_SECRET_FILE_SIZE)?;
    let text = String::from_utf8(bytes).map_err(|_| fail("is not UTF-8 text"))?;
    let value = text.trim();
    if value.is_empty() {
        return Err(fail("is empty"));
    }
    if value.chars().any(char::is_control) {
        return Err(fail(
            "holds more than one line or a control character (only surrounding whitespace is taken off)",
        ));
    }
    Ok((value.to_string(), stamp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn file_secret(option: &'static str, path: &Path, dir: &Path) -> Secret {
        Secret::File {
            option,
            path: path.to_path_buf(),
            dir: dir.to_path_buf(),
        }
    }

    fn basic(password: Secret) -> Auth {
        Auth::Basic {
            username: "alice".into(),
            password,
        }
    }

    fn header(credentials: &Credentials) -> String {
        credentials
            .authorization
            .as_ref()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn inline_and_file_credentials_become_one_sensitive_header() {
        let dir = tempfile::tempdir().unwrap();
        let inline = load(Some(&basic(Secret::Inline("s3cret".into()))))
            .await
            .unwrap();
        assert_eq!(header(&inline), "Basic YWxpY2U6czNjcmV0");
        assert!(inline.authorization.as_ref().unwrap().is_sensitive());
        assert!(!format!("{inline:?}").contains("YWxp"));
        assert_eq!(
            fingerprint(Some(&basic(Secret::Inline("x".into())))).await,
            None
        );

        let path = dir.path().join("password");
        std::fs::write(&path, "  s3cret\n").unwrap();
        let auth = basic(file_secret("loki-password-file", &path, dir.path()));
        let read = load(Some(&auth)).await.unwrap();
        assert_eq!(
            header(&read),
            "Basic YWxpY2U6czNjcmV0",
            "whitespace taken off"
        );
        assert_eq!(fingerprint(Some(&auth)).await, Some(read.fingerprint));

        let token = dir.path().join("token");
        std::fs::write(&token, "abc.def\n").unwrap();
        let bearer = Auth::Bearer(file_secret("loki-bearer-token-file", &token, dir.path()));
        assert_eq!(
            header(&load(Some(&bearer)).await.unwrap()),
            "Bearer abc.def"
        );
        // Rotated as tools do it (a new file renamed over): noticed.
        let before = fingerprint(Some(&bearer)).await.unwrap();
        std::fs::write(dir.path().join("token.new"), "ghi\n").unwrap();
        std::fs::rename(dir.path().join("token.new"), &token).unwrap();
        assert_ne!(fingerprint(Some(&bearer)).await.unwrap(), before);
        assert_eq!(header(&load(Some(&bearer)).await.unwrap()), "Bearer ghi");
        assert!(load(None).await.unwrap().authorization.is_none());
    }

    #[tokio::test]
    async fn bad_files_are_refused_by_option_and_path_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret_text = "TOPSECRET-line1\nTOPSECRET-line2";
        let two_lines = dir.path().join("two-lines");
        std::fs::write(&two_lines, secret_text).unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, b'T', b'O', b'P']).unwrap();
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let elsewhere = outside.path().join("password");
        std::fs::write(&elsewhere, "TOPSECRET-elsewhere").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let cases: [(PathBuf, &str); 7] = [
            (two_lines, "more than one line"),
            (empty, "is empty"),
            (binary, "not UTF-8"),
            (big, "1048576 bytes"),
            (link, "leads out of the secrets directory"),
            (fifo, "FIFO"),
            (dir.path().join("missing"), "No such file"),
        ];
        for (path, why) in cases {
            let auth = Auth::Bearer(file_secret("loki-bearer-token-file", &path, dir.path()));
            let err = load(Some(&auth)).await.unwrap_err();
            assert!(
                err.contains("loki-bearer-token-file")
                    && err.contains(&*path.to_string_lossy())
                    && err.contains(why),
                "{path:?}: {err}"
            );
            assert!(!err.contains("TOPSECRET"), "{err}");
        }
        // A symlink that stays inside (as Kubernetes lays out secrets) is fine.
        std::fs::create_dir(dir.path().join("..data")).unwrap();
        std::fs::write(dir.path().join("..data/token"), "inside").unwrap();
        std::os::unix::fs::symlink("..data/token", dir.path().join("token")).unwrap();
        let auth = Auth::Bearer(file_secret(
            "loki-bearer-token-file",
            &dir.path().join("token"),
            dir.path(),
        ));
        assert_eq!(header(&load(Some(&auth)).await.unwrap()), "Bearer inside");
    }
}
