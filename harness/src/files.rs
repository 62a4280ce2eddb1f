//! Files the harness reads and writes: read with a size limit, so that no input (a scenario,
//! a results file, `/dev/zero`) is read without end; written with their folders made.

use std::io::Write as _;
use std::path::Path;

/// Reads `path`, `what` it is (`a results file`) naming it in the error for a file longer
/// than `limit` bytes. At most `limit + 1` bytes are read, so an endless file (`/dev/zero`, a
/// pipe that never closes) ends too; the error is of kind `FileTooLarge` and says the limit.
pub fn read_file(path: &Path, limit: u64, what: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        let size = if limit % (1 << 20) == 0 {
            format!("{} MiB", limit >> 20)
        } else {
            format!("{limit} bytes")
        };
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {size}, the most {what} may hold"),
        ));
    }
    Ok(bytes)
}

/// Writes `text` to `path`, creating its folder.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::File::create(path)?;
    f.write_all(text.as_bytes())
}
