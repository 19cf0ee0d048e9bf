//! HTTP(S) sources: Hugging Face hub files and plain URLs.
//!
//! Fails fast when the network is not there: DNS failures return at once, connecting gives
//! up after a few seconds, and the response headers must arrive soon after. The body itself
//! has no deadline (a slow link may take minutes for 250 MB).

use std::io::Read;
use std::time::Duration;

use super::cache::PartFile;
use super::error::SourceError;
use super::progress::Progress;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

/// The download URL of a file on the Hugging Face hub, honouring `$HF_ENDPOINT` (the variable
/// Hugging Face's own tools read, used for mirrors).
pub fn hugging_face_url(repo: &str, revision: &str, file: &str) -> String {
    let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty());
    let endpoint = endpoint.as_deref().unwrap_or(DEFAULT_HF_ENDPOINT).trim_end_matches('/');
    format!("{endpoint}/{repo}/resolve/{revision}/{file}")
}

/// Streams `url` into `part`. Proxies come from the usual environment variables.
pub fn download(
    url: &str,
    part: &mut PartFile,
    expected_size: u64,
    progress: Progress,
) -> Result<(), SourceError> {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_resolve(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let unavailable =
        |what: &str, e: &dyn std::fmt::Display| SourceError::Unavailable(format!("{what} {url}: {e}"));

    let mut response = agent.get(url).call().map_err(|e| unavailable("GET", &e))?;
    let body = response.body_mut();
    if let Some(len) = body.content_length() {
        if len != expected_size {
            return Err(SourceError::Size { expected: expected_size, actual: len });
        }
    }
    let mut reader = body.as_reader();
    let mut bar = progress.bytes("downloading", expected_size);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| unavailable("reading", &e))?;
        if n == 0 {
            break;
        }
        part.write(&buf[..n])?;
        bar.advance(n as u64);
    }
    bar.finish();
    Ok(())
}
