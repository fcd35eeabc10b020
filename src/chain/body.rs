//! Reading an HTTP answer from an endpoint that may be hostile: the body is bounded, never read whole
//! first, and texts taken from it into errors are cut short. Shared by every chain family's RPC client.

/// The largest response body accepted, in bytes: 4 MiB. The trap's answers are small (a chain's head, an
/// account, a producer, a block header: a few KiB); the largest is a whole Graphene block, a few hundred
/// KiB as JSON. An answer beyond 4 MiB is a broken or hostile endpoint, and reading it whole (say 800 MB)
/// could exhaust this machine's memory; a limit this low also bounds what one endpoint costs per poll.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Longest text kept from an answer in an error message (node error text, parse errors that quote the
/// offending value): errors go to logs, `status` and alerts.
pub const MAX_ERROR_TEXT: usize = 300;

/// `text` cut to [`MAX_ERROR_TEXT`] characters (an ellipsis marks a cut).
pub fn bounded_text(text: &str) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(MAX_ERROR_TEXT).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// Larger than [`MAX_RESPONSE_BYTES`]; the detail says how much was seen.
    TooLarge(String),
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// The body, at most [`MAX_RESPONSE_BYTES`]: refused by its `Content-Length` before reading, or as soon as
/// the chunks read so far exceed the limit (the connection is then dropped, the rest never read).
pub async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let announced = resp.content_length();
    if let Some(len) = announced.filter(|len| *len > MAX_RESPONSE_BYTES as u64) {
        return Err(BodyError::TooLarge(format!("Content-Length {len} bytes")));
    }
    // Content-Length is at most the limit here; without one, start small and grow.
    let capacity = announced.map_or(16 * 1024, |len| len as usize);
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(BodyError::TooLarge(format!("at least {} bytes", body.len() + chunk.len())));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
