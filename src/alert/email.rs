//! The e-mail channel: one plain-text message per incident, to every `SMTP_TO` mailbox, over SMTP with lettre.
//!
//! `SMTP_URL` is lettre's URL form, but only the encrypted kinds are accepted for a real server: `smtps://`
//! (implicit TLS, port 465 by default) or `smtp://…?tls=required` (STARTTLS, port 587 by default). A plain
//! `smtp://` is accepted only for a loopback host (a local relay), where nothing crosses the network. The URL
//! never carries credentials: they come from `SMTP_USERNAME` and `SMTP_PASSWORD`, so that the URL can be
//! logged, and the password is a `SecretString` everywhere but the moment lettre needs it.
//!
//! Each attempt is bounded by the timeout. Connection failures, timeouts and transient (4xx) replies are
//! retried with doubling back-off, slept through the `Clock`; a permanent (5xx) refusal is final, since
//! sending the same message again would only be refused again.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine as _;
use chain_clock::SharedClock;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};

use super::{Incident, Notifier, SendFuture};

/// How the connection to the SMTP server is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtps://`: TLS from the first byte.
    Implicit,
    /// `smtp://…?tls=required`: STARTTLS, and the send fails if the server does not offer it.
    StartTls,
    /// Plain `smtp://`, for a loopback host only.
    None,
}

/// The SMTP server of `SMTP_URL`, valid by construction: a plain connection is only ever to a loopback host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpServer {
    /// Host name or IP address, IPv6 without brackets (what a socket connects to).
    host: String,
    port: u16,
    tls: SmtpTls,
}

impl SmtpServer {
    pub fn host(&self) -> &str {
        &self.host
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    pub fn tls(&self) -> SmtpTls {
        self.tls
    }
}

impl fmt::Display for SmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `SMTP_USERNAME` and `SMTP_PASSWORD`.
#[derive(Debug, Clone)]
pub struct SmtpAuth {
    pub username: String,
    pub password: SecretString,
}

/// Everything needed to send the e-mail.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub server: SmtpServer,
    /// `None`: the server takes mail without logging in (a local relay).
    pub auth: Option<SmtpAuth>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Bound of one attempt: connecting, TLS, login and the whole transaction.
    pub timeout: Duration,
    /// Attempts, first one included.
    pub max_attempts: u32,
    /// First back-off; doubles after each retry.
    pub backoff: Duration,
}

impl EmailSettings {
    /// No login, a 10 s timeout, 3 attempts, 2 s first back-off.
    pub fn new(server: SmtpServer, from: Mailbox, to: Vec<Mailbox>) -> Self {
        Self {
            server,
            auth: None,
            from,
            to,
            timeout: Duration::from_secs(10),
            max_attempts: 3,
            backoff: Duration::from_secs(2),
        }
    }
}

const URL_FORMS: &str = "smtps://host:465 or smtp://host:587?tls=required";

/// `SMTP_URL`: `smtps://host[:port]`, `smtp://host[:port]?tls=required`, or plain `smtp://host[:port]` for a
/// loopback host. The reason never repeats the URL, which might hold a password.
pub fn parse_smtp_url(s: &str) -> Result<SmtpServer, String> {
    let url = Url::parse(s.trim()).map_err(|e| format!("not a URL ({e}); expected {URL_FORMS}"))?;
    // Checked first, so that no later reason could be about a URL that holds a secret.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "the URL must not carry a user name or password: set SMTP_USERNAME and SMTP_PASSWORD instead".to_string()
        );
    }
    let scheme = url.scheme();
    if scheme != "smtps" && scheme != "smtp" {
        return Err(format!("unsupported scheme {scheme:?}; expected {URL_FORMS}"));
    }
    let host = match url.host_str() {
        // IPv6 comes bracketed ("[::1]"); the socket and the TLS name want it bare.
        Some(h) if h.starts_with('[') => match h.trim_start_matches('[').trim_end_matches(']').parse::<Ipv6Addr>() {
            Ok(a) => a.to_string(),
            Err(_) => return Err(format!("{h:?} is not an IPv6 address")),
        },
        Some(h) if !h.is_empty() => {
            let ok = h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
            if !ok {
                return Err(format!("{h:?} is not a host name"));
            }
            h.to_string()
        }
        _ => return Err(format!("no host; expected {URL_FORMS}")),
    };
    if url.path() != "" && url.path() != "/" {
        return Err(format!("unexpected path {:?}; expected {URL_FORMS}", url.path()));
    }
    if url.fragment().is_some() {
        return Err(format!("unexpected '#' fragment; expected {URL_FORMS}"));
    }
    let mut tls_required = false;
    for (key, value) in url.query_pairs() {
        match (key.as_ref(), value.as_ref()) {
            ("tls", "required") if scheme == "smtp" => tls_required = true,
            ("tls", _) if scheme == "smtps" => {
                return Err("smtps:// is TLS already; drop the ?tls= parameter".to_string());
            }
            // `opportunistic` would let anyone on the path strip STARTTLS and read the password.
            ("tls", v) => return Err(format!("tls={v:?} is not accepted; use tls=required")),
            (k, _) => return Err(format!("unknown parameter {k:?}; only tls=required is understood")),
        }
    }
    let (tls, default_port) = match (scheme, tls_required) {
        ("smtps", _) => (SmtpTls::Implicit, 465),
        (_, true) => (SmtpTls::StartTls, 587),
        _ if is_loopback(&host) => (SmtpTls::None, 25),
        _ => {
            return Err(format!(
                "plain smtp:// to {host} would send the password and the alert unencrypted; it is accepted only \
                 for a loopback host (127.0.0.0/8, ::1, localhost); use smtps://{host}:465 or \
                 smtp://{host}:587?tls=required"
            ))
        }
    };
    let port = url.port().unwrap_or(default_port);
    if port == 0 {
        return Err("port 0 is not a port".to_string());
    }
    Ok(SmtpServer { host, port, tls })
}

/// 127.0.0.0/8, ::1 or `localhost`: traffic that never leaves the machine.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback())
        || host.parse::<Ipv6Addr>().is_ok_and(|a| a.is_loopback())
}

/// `SMTP_FROM`, or one item of `SMTP_TO`: `Name <a@b>` or `a@b`.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("empty; expected an address such as alerts@example.com or Trap <alerts@example.com>".to_string());
    }
    s.parse::<Mailbox>().map_err(|e| {
        format!(
            "{s:?} is not a mailbox ({e}); expected an address such as alerts@example.com or Trap <alerts@example.com>"
        )
    })
}

/// `SMTP_TO`: comma-separated mailboxes, at least one. A comma inside a quoted name (`"Doe, J" <j@d>`) or
/// inside `<…>` does not split.
pub fn parse_recipients(s: &str) -> Result<Vec<Mailbox>, String> {
    if s.trim().is_empty() {
        return Err("no recipient; give one or more comma-separated addresses".to_string());
    }
    let items = split_list(s);
    let n = items.len();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_mailbox(item).map_err(|e| format!("recipient {} of {n}: {e}", i + 1)))
        .collect()
}

/// Split on the commas that separate mailboxes, not those in a quoted name, a `<…>` or after a backslash.
fn split_list(s: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut quoted, mut angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&s[start..]);
    items
}

/// `SMTP_USERNAME` and `SMTP_PASSWORD`: both or neither (an empty value counts as unset). The reason never
/// contains the password.
pub fn parse_auth(username: Option<&str>, password: Option<SecretString>) -> Result<Option<SmtpAuth>, String> {
    let username = username.map(str::trim).filter(|u| !u.is_empty());
    let password = password.filter(|p| !p.expose_secret().is_empty());
    match (username, password) {
        (None, None) => Ok(None),
        (Some(u), Some(p)) => Ok(Some(SmtpAuth { username: u.to_string(), password: p })),
        (Some(_), None) => Err("SMTP_USERNAME is set without SMTP_PASSWORD; set both or neither".to_string()),
        (None, Some(_)) => Err("SMTP_PASSWORD is set without SMTP_USERNAME; set both or neither".to_string()),
    }
}

/// Why an e-mail did not go out. Messages name the server, never the credentials (and are scrubbed of the
/// password anyway before they leave [`EmailNotifier::send`], in case a server echoes it).
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("smtp server {server} refused the e-mail: {reason}")]
    Refused { server: String, reason: String },
    #[error("smtp server {server} kept failing after {attempts} attempt(s): {last}")]
    Exhausted { server: String, attempts: u32, last: String },
    #[error("cannot write the e-mail for smtp server {server}: {reason}")]
    Build { server: String, reason: String },
}

/// The e-mail channel: one message to all `SMTP_TO` recipients.
pub struct EmailNotifier {
    settings: EmailSettings,
    clock: SharedClock,
}

impl EmailNotifier {
    pub fn new(settings: EmailSettings, clock: SharedClock) -> Self {
        Self { settings, clock }
    }

    fn build_error(&self, reason: impl fmt::Display) -> EmailError {
        EmailError::Build { server: self.settings.server.to_string(), reason: reason.to_string() }
    }

    fn message(&self, incident: &Incident) -> Result<Message, EmailError> {
        let mut builder = Message::builder().from(self.settings.from.clone()).subject(subject(incident));
        for to in &self.settings.to {
            builder = builder.to(to.clone());
        }
        builder.header(ContentType::TEXT_PLAIN).body(incident.text()).map_err(|e| self.build_error(e))
    }

    fn transport(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, EmailError> {
        let s = &self.settings.server;
        let params = || TlsParameters::new(s.host.clone()).map_err(|e| self.build_error(e));
        let tls = match s.tls {
            SmtpTls::Implicit => Tls::Wrapper(params()?),
            SmtpTls::StartTls => Tls::Required(params()?),
            SmtpTls::None => Tls::None,
        };
        // builder_dangerous only because the TLS mode is set here explicitly; `SmtpServer` guarantees that
        // `Tls::None` is for a loopback host.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
            .port(s.port)
            .tls(tls)
            .timeout(Some(self.settings.timeout));
        if let Some(auth) = &self.settings.auth {
            builder =
                builder.credentials(Credentials::new(auth.username.clone(), auth.password.expose_secret().to_string()));
        }
        Ok(builder.build())
    }

    async fn deliver(&self, incident: &Incident) -> Result<(), EmailError> {
        let message = self.message(incident)?;
        let formatted = message.formatted();
        let transport = self.transport()?;
        let server = self.settings.server.to_string();
        let attempts = self.settings.max_attempts.max(1);
        let timeout = self.settings.timeout;
        let mut backoff = self.settings.backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            // lettre's own timeout bounds the connect; this bounds the whole attempt (a server that accepts
            // and then says nothing would otherwise hold the alert forever).
            match tokio::time::timeout(timeout, transport.send_raw(message.envelope(), &formatted)).await {
                Ok(Ok(_)) => {
                    tracing::info!(%server, attempt, recipients = self.settings.to.len(), "e-mail accepted");
                    return Ok(());
                }
                // A 5xx, or something on our side (no common AUTH mechanism, no STARTTLS offered): the same
                // message would fail the same way.
                Ok(Err(e)) if e.is_permanent() || e.is_client() => {
                    return Err(EmailError::Refused { server, reason: truncate(&e.to_string(), 300) });
                }
                Ok(Err(e)) => last = truncate(&e.to_string(), 300),
                Err(_) => last = format!("no answer within {} ms", timeout.as_millis()),
            }
            tracing::warn!(%server, attempt, attempts, error = %self.redact(&last), "e-mail not accepted");
            if attempt < attempts {
                self.clock.sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
            }
        }
        Err(EmailError::Exhausted { server, attempts, last })
    }

    /// Remove the password, and the base64 forms AUTH PLAIN and AUTH LOGIN send it in, from `text`. lettre
    /// never puts them in an error, but a server's reply text is the server's to choose.
    fn redact(&self, text: &str) -> String {
        let Some(auth) = &self.settings.auth else { return text.to_string() };
        let password = auth.password.expose_secret();
        if password.is_empty() {
            return text.to_string();
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let secrets =
            [b64.encode(format!("\0{}\0{}", auth.username, password)), b64.encode(password), password.to_string()];
        let mut out = text.to_string();
        for s in &secrets {
            out = out.replace(s.as_str(), "[REDACTED]");
        }
        out
    }
}

/// `[witness-trap] <event>: @<account> on <chain>`.
fn subject(incident: &Incident) -> String {
    let (account, chain) = incident.subject();
    format!("[witness-trap] {}: @{} on {}", incident.event(), account, chain)
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

impl Notifier for EmailNotifier {
    fn name(&self) -> &'static str {
        "email"
    }

    fn send<'a>(&'a self, incident: &'a Incident) -> SendFuture<'a> {
        Box::pin(async move {
            tracing::info!(server = %self.settings.server, recipients = self.settings.to.len(), "sending the e-mail");
            self.deliver(incident).await.map_err(|e| self.redact(&e.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::{Arc, Mutex};

    use chain_clock::{Clock, SystemClock};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// How the fake server treats one connection: the reply codes to AUTH, MAIL FROM and the end of DATA.
    #[derive(Debug, Clone, Copy)]
    struct Script {
        /// Send the 220 greeting; `false` accepts the connection and then says nothing.
        greet: bool,
        auth: u16,
        mail: u16,
        data: u16,
        /// A hostile server: a refused AUTH is answered with the AUTH line and the decoded password.
        echo_auth: bool,
    }

    const OK: Script = Script { greet: true, auth: 235, mail: 250, data: 250, echo_auth: false };

    #[derive(Default)]
    struct Seen {
        connections: usize,
        commands: Vec<String>,
        /// Each DATA body, dot-unstuffed, with CRLF line ends.
        bodies: Vec<String>,
    }

    /// An SMTP server on 127.0.0.1 speaking just enough for lettre; connection `n` follows `scripts[n]`, or
    /// the last script once they run out.
    struct FakeSmtp {
        port: u16,
        seen: Arc<Mutex<Seen>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl FakeSmtp {
        async fn start(scripts: Vec<Script>) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let seen = Arc::new(Mutex::new(Seen::default()));
            let shared = seen.clone();
            let task = tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let n = {
                        let mut s = shared.lock().unwrap();
                        s.connections += 1;
                        s.connections
                    };
                    let script = scripts.get(n - 1).or(scripts.last()).copied().unwrap_or(OK);
                    tokio::spawn(serve(socket, script, shared.clone()));
                }
            });
            Self { port, seen, task }
        }

        fn server(&self) -> SmtpServer {
            parse_smtp_url(&format!("smtp://127.0.0.1:{}", self.port)).unwrap()
        }

        fn connections(&self) -> usize {
            self.seen.lock().unwrap().connections
        }

        fn count(&self, verb: &str) -> usize {
            self.seen.lock().unwrap().commands.iter().filter(|c| c.to_ascii_uppercase().starts_with(verb)).count()
        }

        fn commands(&self) -> Vec<String> {
            self.seen.lock().unwrap().commands.clone()
        }

        fn bodies(&self) -> Vec<String> {
            self.seen.lock().unwrap().bodies.clone()
        }
    }

    impl Drop for FakeSmtp {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn reply(code: u16) -> String {
        let text = match code / 100 {
            2 => "2.0.0 ok",
            3 => "go ahead",
            4 => "4.3.0 try again later",
            _ => "5.7.1 refused by policy",
        };
        format!("{code} {text}\r\n")
    }

    async fn serve(socket: TcpStream, script: Script, seen: Arc<Mutex<Seen>>) {
        let (read, mut write) = socket.into_split();
        let mut read = BufReader::new(read);
        if !script.greet {
            // Hold the connection open in silence until the client gives up and closes it.
            let _ = read.read_to_end(&mut Vec::new()).await;
            return;
        }
        if write.write_all(b"220 fake.test ESMTP\r\n").await.is_err() {
            return;
        }
        let mut line = String::new();
        loop {
            line.clear();
            if !matches!(read.read_line(&mut line).await, Ok(n) if n > 0) {
                return;
            }
            let command = line.trim_end().to_string();
            seen.lock().unwrap().commands.push(command.clone());
            let words: Vec<&str> = command.split_whitespace().collect();
            let verb = words.first().map(|w| w.to_ascii_uppercase()).unwrap_or_default();
            let answer = match verb.as_str() {
                "EHLO" => "250-fake.test\r\n250-AUTH PLAIN LOGIN\r\n250 SIZE 1000000\r\n".to_string(),
                "HELO" | "RSET" | "NOOP" | "RCPT" => reply(250),
                "MAIL" => reply(script.mail),
                "AUTH" => {
                    let mut token = words.get(2).map(|t| t.to_string());
                    if token.is_none() {
                        // AUTH PLAIN without an initial response: ask for it.
                        if write.write_all(b"334 \r\n").await.is_err() {
                            return;
                        }
                        line.clear();
                        if read.read_line(&mut line).await.is_err() {
                            return;
                        }
                        token = Some(line.trim_end().to_string());
                        seen.lock().unwrap().commands.push(line.trim_end().to_string());
                    }
                    if script.echo_auth && script.auth != 235 {
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(token.unwrap_or_default())
                            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                            .unwrap_or_default();
                        format!("{} 5.7.8 rejected [{command}] for [{decoded}]\r\n", script.auth)
                    } else {
                        reply(script.auth)
                    }
                }
                "DATA" => {
                    if write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await.is_err() {
                        return;
                    }
                    let mut body = String::new();
                    loop {
                        line.clear();
                        if !matches!(read.read_line(&mut line).await, Ok(n) if n > 0) {
                            return;
                        }
                        if line == ".\r\n" || line == ".\n" {
                            break;
                        }
                        body.push_str(if line.starts_with("..") { &line[1..] } else { &line });
                    }
                    seen.lock().unwrap().bodies.push(body);
                    reply(script.data)
                }
                "QUIT" => {
                    let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                    return;
                }
                _ => "502 5.5.2 unknown command\r\n".to_string(),
            };
            if write.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// A clock whose sleeps return at once and are recorded, so back-off is checked without waiting.
    #[derive(Default)]
    struct Sleeps(Mutex<Vec<Duration>>);

    impl Clock for Sleeps {
        fn now(&self) -> Duration {
            SystemClock.now()
        }
        fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
            self.0.lock().unwrap().push(d);
            Box::pin(async {})
        }
    }

    impl Sleeps {
        fn taken(&self) -> Vec<Duration> {
            self.0.lock().unwrap().clone()
        }
    }

    const PASSWORD: &str = "s3cret-Pa55word";

    fn settings(server: SmtpServer) -> EmailSettings {
        let mut s = EmailSettings::new(
            server,
            parse_mailbox("Witness Trap <trap@example.com>").unwrap(),
            parse_recipients("ops@example.com, Night Shift <night@example.org>").unwrap(),
        );
        s.timeout = Duration::from_secs(5);
        s.backoff = Duration::from_secs(1);
        s
    }

    fn with_auth(mut s: EmailSettings) -> EmailSettings {
        s.auth = parse_auth(Some("trap-user"), Some(SecretString::from(PASSWORD))).unwrap();
        s
    }

    fn notifier(s: EmailSettings) -> (EmailNotifier, Arc<Sleeps>) {
        let sleeps = Arc::new(Sleeps::default());
        (EmailNotifier::new(s, sleeps.clone()), sleeps)
    }

    fn incident() -> Incident {
        Incident::Test { witness: "alice".into(), chain: "hive".into() }
    }

    /// The header `name` of a DATA body, unfolded.
    fn header(body: &str, name: &str) -> Option<String> {
        let head = body.split("\r\n\r\n").next()?.replace("\r\n ", " ").replace("\r\n\t", " ");
        let prefix = format!("{name}: ");
        head.lines().find_map(|l| l.strip_prefix(&prefix)).map(str::to_string)
    }

    #[tokio::test]
    async fn delivers_one_message_with_from_to_subject_and_body() {
        let fake = FakeSmtp::start(vec![OK]).await;
        let (n, sleeps) = notifier(settings(fake.server()));
        assert_eq!(n.name(), "email");
        n.send(&incident()).await.unwrap();
        assert_eq!((fake.connections(), fake.count("MAIL FROM"), fake.count("RCPT TO")), (1, 1, 2));
        assert_eq!(fake.count("AUTH"), 0, "no credentials configured, no login");
        let commands = fake.commands();
        assert!(commands.iter().any(|c| c == "MAIL FROM:<trap@example.com>"), "{commands:?}");
        assert!(commands.iter().any(|c| c == "RCPT TO:<ops@example.com>"), "{commands:?}");
        assert!(commands.iter().any(|c| c == "RCPT TO:<night@example.org>"), "{commands:?}");
        let bodies = fake.bodies();
        assert_eq!(bodies.len(), 1);
        let body = &bodies[0];
        assert_eq!(header(body, "From").as_deref(), Some("\"Witness Trap\" <trap@example.com>"), "{body}");
        assert_eq!(header(body, "To").as_deref(), Some("ops@example.com, \"Night Shift\" <night@example.org>"));
        assert_eq!(header(body, "Subject").as_deref(), Some("[witness-trap] test: @alice on hive"));
        assert_eq!(header(body, "Content-Type").as_deref(), Some("text/plain; charset=utf-8"));
        let text = body.split_once("\r\n\r\n").map(|(_, t)| t.trim_end()).unwrap();
        assert_eq!(text, incident().text());
        assert!(sleeps.taken().is_empty());
    }

    #[tokio::test]
    async fn permanent_refusal_is_tried_exactly_once_with_a_readable_reason() {
        for (script, at) in [(Script { mail: 550, ..OK }, "MAIL"), (Script { data: 554, ..OK }, "end of DATA")] {
            let fake = FakeSmtp::start(vec![script]).await;
            let (n, sleeps) = notifier(settings(fake.server()));
            let err = n.send(&incident()).await.unwrap_err();
            assert_eq!((fake.connections(), fake.count("MAIL FROM")), (1, 1), "5xx at {at} is final");
            assert!(sleeps.taken().is_empty());
            assert!(err.contains("refused") && err.contains(&format!("127.0.0.1:{}", fake.port)), "{err}");
            assert!(
                err.contains(&script.mail.max(script.data).to_string()) && err.contains("refused by policy"),
                "{err}"
            );
        }
    }

    #[tokio::test]
    async fn transient_failure_is_retried_with_doubling_backoff_then_given_up() {
        for script in [Script { data: 451, ..OK }, Script { mail: 451, ..OK }] {
            let fake = FakeSmtp::start(vec![script]).await;
            let (n, sleeps) = notifier(settings(fake.server()));
            let err = n.send(&incident()).await.unwrap_err();
            assert_eq!((fake.connections(), fake.count("MAIL FROM")), (3, 3));
            assert_eq!(sleeps.taken(), [Duration::from_secs(1), Duration::from_secs(2)]);
            assert!(err.contains("after 3 attempt(s)") && err.contains("451"), "{err}");
            assert!(err.contains(&format!("127.0.0.1:{}", fake.port)), "{err}");
        }
    }

    #[tokio::test]
    async fn transient_failure_then_success_delivers_once() {
        let fake = FakeSmtp::start(vec![Script { mail: 421, ..OK }, OK]).await;
        let (n, sleeps) = notifier(settings(fake.server()));
        n.send(&incident()).await.unwrap();
        assert_eq!((fake.connections(), fake.count("MAIL FROM"), fake.bodies().len()), (2, 2, 1));
        assert_eq!(sleeps.taken(), [Duration::from_secs(1)]);
    }

    #[tokio::test]
    async fn a_server_that_never_greets_times_out_on_every_attempt() {
        let fake = FakeSmtp::start(vec![Script { greet: false, ..OK }]).await;
        let mut s = settings(fake.server());
        s.timeout = Duration::from_millis(300);
        s.backoff = Duration::ZERO;
        let n = EmailNotifier::new(s, Arc::new(SystemClock));
        let err = n.send(&incident()).await.unwrap_err();
        // Counted, not timed: these machines are shared and noisy.
        assert_eq!((fake.connections(), fake.count("EHLO")), (3, 0));
        assert!(err.contains("no answer within 300 ms") && err.contains("after 3 attempt(s)"), "{err}");
    }

    #[tokio::test]
    async fn unreachable_server_is_retried_and_named() {
        // A port that was just free: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let (n, sleeps) = notifier(settings(parse_smtp_url(&format!("smtp://127.0.0.1:{port}")).unwrap()));
        let err = n.send(&incident()).await.unwrap_err();
        assert_eq!(sleeps.taken().len(), 2, "three attempts");
        assert!(err.contains(&format!("127.0.0.1:{port}")) && err.contains("after 3 attempt(s)"), "{err}");
    }

    #[tokio::test]
    async fn auth_plain_carries_the_username_and_password() {
        let fake = FakeSmtp::start(vec![OK]).await;
        let (n, _) = notifier(with_auth(settings(fake.server())));
        n.send(&incident()).await.unwrap();
        let commands = fake.commands();
        let auth: Vec<&String> = commands.iter().filter(|c| c.starts_with("AUTH")).collect();
        assert_eq!(auth.len(), 1, "{commands:?}");
        let token = auth[0].strip_prefix("AUTH PLAIN ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD.decode(token).unwrap();
        assert_eq!(decoded, format!("\0trap-user\0{PASSWORD}").into_bytes());
        let auth_at = commands.iter().position(|c| c.starts_with("AUTH")).unwrap();
        let mail_at = commands.iter().position(|c| c.starts_with("MAIL")).unwrap();
        assert!(auth_at < mail_at, "logs in before the transaction");
    }

    #[tokio::test]
    async fn errors_never_hold_the_password_or_the_auth_line() {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("\0trap-user\0{PASSWORD}"));
        let cases = [
            (Script { auth: 535, echo_auth: true, ..OK }, 1),
            (Script { auth: 454, echo_auth: true, ..OK }, 3),
            (Script { mail: 550, ..OK }, 1),
            (Script { data: 451, ..OK }, 3),
        ];
        for (script, attempts) in cases {
            let fake = FakeSmtp::start(vec![script]).await;
            let (n, _) = notifier(with_auth(settings(fake.server())));
            let err = n.send(&incident()).await.unwrap_err();
            assert_eq!(fake.connections(), attempts, "{script:?}: {err}");
            assert_eq!(fake.count("AUTH PLAIN"), attempts, "each attempt logged in");
            let auth_line = format!("AUTH PLAIN {token}");
            assert!(fake.commands().contains(&auth_line), "the server did see the credentials");
            for secret in [PASSWORD, token.as_str(), auth_line.as_str()] {
                assert!(!err.contains(secret), "{script:?} leaked {secret:?}: {err}");
            }
            assert!(err.contains(&format!("127.0.0.1:{}", fake.port)), "{err}");
            if script.echo_auth {
                // The hostile server's echo reached the error, scrubbed.
                assert!(err.contains("[REDACTED]"), "{err}");
            } else {
                assert!(!err.contains("AUTH"), "lettre's own errors say nothing of the login: {err}");
            }
        }
        let s = with_auth(settings(parse_smtp_url("smtps://mail.example.com").unwrap()));
        let debug = format!("{s:?}");
        assert!(!debug.contains(PASSWORD) && debug.contains("trap-user"), "{debug}");
    }

    #[tokio::test]
    async fn required_starttls_never_falls_back_to_plain() {
        // The fake server offers no STARTTLS: the send must stop before the login, and not retry.
        let fake = FakeSmtp::start(vec![OK]).await;
        let server = parse_smtp_url(&format!("smtp://127.0.0.1:{}?tls=required", fake.port)).unwrap();
        let (n, sleeps) = notifier(with_auth(settings(server)));
        let err = n.send(&incident()).await.unwrap_err();
        assert_eq!((fake.connections(), fake.count("AUTH"), fake.count("MAIL")), (1, 0, 0), "{err}");
        assert!(sleeps.taken().is_empty());
        assert!(err.contains("STARTTLS") && err.contains("refused"), "{err}");
    }

    #[test]
    fn tls_transports_build_with_the_bundled_roots() {
        for url in ["smtps://mail.example.com", "smtp://mail.example.com?tls=required", "smtps://[2001:db8::1]"] {
            let (n, _) = notifier(settings(parse_smtp_url(url).unwrap()));
            assert!(n.transport().is_ok(), "{url}");
        }
    }

    #[test]
    fn subject_names_event_account_and_chain() {
        let i = Incident::Swapped {
            witness: "bob".into(),
            chain: "steem".into(),
            missed: 3,
            new_key: "STM1".into(),
            txid: "ab".into(),
            by: None,
        };
        assert_eq!(subject(&i), "[witness-trap] fired: @bob on steem");
    }

    #[test]
    fn smtp_url_table() {
        use SmtpTls::*;
        let ok = [
            ("smtps://mail.example.com", "mail.example.com", 465, Implicit),
            ("smtps://mail.example.com:2465", "mail.example.com", 2465, Implicit),
            ("smtps://mail.example.com:465/", "mail.example.com", 465, Implicit),
            ("smtp://mail.example.com:587?tls=required", "mail.example.com", 587, StartTls),
            ("smtp://mail.example.com?tls=required", "mail.example.com", 587, StartTls),
            ("  smtp://10.0.0.5:2525?tls=required ", "10.0.0.5", 2525, StartTls),
            ("smtp://127.0.0.1:1025", "127.0.0.1", 1025, None),
            ("smtp://127.8.9.10", "127.8.9.10", 25, None),
            ("smtp://localhost:25", "localhost", 25, None),
            ("smtp://LocalHost:2525", "LocalHost", 2525, None),
            ("smtp://[::1]:1025", "::1", 1025, None),
            ("smtps://[2001:db8::1]", "2001:db8::1", 465, Implicit),
        ];
        for (url, host, port, tls) in ok {
            let s = parse_smtp_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!((s.host(), s.port(), s.tls()), (host, port, tls), "{url}");
        }
        let refused = [
            ("smtp://mail.example.com:587", "loopback", "plain smtp to a public host"),
            ("smtp://10.0.0.5", "loopback", "plain smtp to a private, not loopback, host"),
            ("smtp://localhost.example.com", "loopback", "only localhost itself is loopback"),
            ("smtp://mail.example.com?tls=opportunistic", "tls=required", "downgradable STARTTLS"),
            ("smtps://mail.example.com?tls=required", "TLS already", "tls on smtps"),
            ("smtp://mail.example.com?tls=required&x=1", "unknown parameter", "unknown parameter"),
            ("http://mail.example.com", "scheme", "http"),
            ("https://mail.example.com", "scheme", "https"),
            ("smtps://user:hunter2@mail.example.com", "SMTP_USERNAME and SMTP_PASSWORD", "credentials"),
            ("smtps://user@mail.example.com", "SMTP_USERNAME and SMTP_PASSWORD", "user name only"),
            ("smtps://:hunter2@mail.example.com", "SMTP_USERNAME and SMTP_PASSWORD", "password only"),
            ("smtps://", "host", "missing host"),
            ("smtps:mail.example.com", "host", "no //"),
            ("smtps://mail.example.com/helo.name", "path", "a path"),
            ("smtps://mail.example.com:0", "port", "port 0"),
            ("mail.example.com:465", "", "no scheme"),
            ("", "", "empty"),
        ];
        for (url, reason, why) in refused {
            let e = parse_smtp_url(url).map(|s| format!("{s:?}")).unwrap_err();
            assert!(e.contains(reason), "{why}: {url:?} -> {e}");
            assert!(!e.contains("hunter2"), "{why}: the reason echoes the password: {e}");
        }
    }

    #[test]
    fn mailbox_table() {
        let ok = [
            ("a@b", None, "a@b"),
            ("  alerts@example.com  ", None, "alerts@example.com"),
            ("Trap <trap@example.com>", Some("Trap"), "trap@example.com"),
            ("\"Doe, Jane\" <jane@example.com>", Some("Doe, Jane"), "jane@example.com"),
        ];
        for (input, name, address) in ok {
            let m = parse_mailbox(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!((m.name.as_deref(), m.email.to_string().as_str()), (name, address), "{input:?}");
        }
        for input in ["", "   ", "no-at-sign", "a@", "@b", "a@b, c@d", "Trap <trap@example.com", "a b@c"] {
            let e = parse_mailbox(input).map(|m| m.to_string()).unwrap_err();
            assert!(e.contains("expected an address"), "{input:?} -> {e}");
        }
    }

    #[test]
    fn recipients_table() {
        let ok: [(&str, &[&str]); 4] = [
            ("ops@example.com", &["ops@example.com"]),
            ("ops@example.com,night@example.org", &["ops@example.com", "night@example.org"]),
            (" A <a@x.io> , b@y.io ", &["a@x.io", "b@y.io"]),
            ("\"Doe, Jane\" <jane@example.com>, b@y.io", &["jane@example.com", "b@y.io"]),
        ];
        for (input, addresses) in ok {
            let list = parse_recipients(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let got: Vec<String> = list.iter().map(|m| m.email.to_string()).collect();
            assert_eq!(got, addresses, "{input:?}");
        }
        let refused = [
            ("", "no recipient"),
            (" ", "no recipient"),
            ("bad", "recipient 1 of 1"),
            ("a@b.io, nope", "recipient 2 of 2"),
            ("a@b.io,,c@d.io", "recipient 2 of 3"),
            ("a@b.io, c@d.io,", "recipient 3 of 3"),
        ];
        for (input, reason) in refused {
            let e = parse_recipients(input).map(|l| l.len()).unwrap_err();
            assert!(e.contains(reason), "{input:?} -> {e}");
        }
    }

    #[test]
    fn auth_is_both_or_neither() {
        let pw = || Some(SecretString::from(PASSWORD));
        assert!(parse_auth(None, None).unwrap().is_none());
        assert!(parse_auth(Some(" "), Some(SecretString::from(""))).unwrap().is_none(), "empty is unset");
        let a = parse_auth(Some(" trap-user "), pw()).unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.expose_secret()), ("trap-user", PASSWORD));
        for (user, password) in [(Some("trap-user"), None), (None, pw())] {
            let e = parse_auth(user, password).unwrap_err();
            assert!(e.contains("set both or neither") && !e.contains(PASSWORD), "{e}");
        }
    }
}
