//! The e-mail channel's sender: a survey e-mail with one signed rating link per score, an RFC
//! 8058 one-click unsubscribe, and a reply address that names the invitation, handed to the
//! tenant's SMTP server, the gateway's (`[email.smtp]`), or, with neither, written as an
//! `.eml` file (`email.file_dir`) so that a demo shows the feature without a mail server.
//!
//! SMTP speaks through lettre's connection, kept in a pool of our own per server and login (see
//! [`Pool`]). A tenant's own server is resolved here and each address checked by the outbound
//! guard (no loopback or private address unless `outbound.allow_private_networks`; plain text
//! only to such an address); the connection goes to the checked address while TLS verifies the
//! host name, so a DNS answer that changes between the check and the connection cannot
//! redirect the message.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use channels::email::links::{self, Purpose};
use channels::email::render::{render, SurveyMail};
use channels::email::{
    texts, DkimAlgorithm, DkimSettings, EmailSettings, SmtpSettings, SmtpTls, DKIM_PRIVATE_KEY,
    SMTP_PASSWORD,
};
use channels::model::AddressVerdict;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncFileTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{OutboundMessage, Pace, Receipt, SendError, Sender};
use crate::config::{EmailConfig, EmailDkimConfig};
use crate::store::{channel_configs, tenants, Db};

/// The SMTP server a message goes to, resolved and checked.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Server {
    /// The checked address lettre connects to.
    ip: IpAddr,
    port: u16,
    tls: SmtpTls,
    /// The name TLS verifies.
    host: String,
    username: Option<String>,
    /// SHA-256 of the password: a changed password is a new pool, and no password is kept in
    /// the key.
    password_sha256: Option<[u8; 32]>,
}

/// A server's open connections, and as many permits as it may have.
///
/// Written here rather than taken from lettre's pool, which opens a further connection when
/// all are busy and closes it after one message (a busy dispatcher would open and close a
/// connection, with its TLS handshake and login, for most messages; relays throttle that), and
/// which cannot set `TCP_NODELAY`: lettre writes a message's body and its closing `.` in two
/// writes, and Nagle's algorithm holds the second until the server acknowledges the first,
/// which a server delaying its ACK makes up to 40 ms per message.
struct Pool {
    idle: Mutex<Vec<IdleConnection>>,
    permits: tokio::sync::Semaphore,
    tls: Option<TlsParameters>,
}

struct IdleConnection {
    connection: AsyncSmtpConnection,
    since: Instant,
}

/// A connection idle for longer is closed rather than used: servers drop idle clients after a
/// few minutes (RFC 5321 4.5.3.2.7 asks for at least 5).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

impl Pool {
    fn take_idle(&self) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().expect("the idle list is never poisoned");
        while let Some(c) = idle.pop() {
            if c.since.elapsed() < IDLE_LIMIT {
                return Some(c.connection);
            }
        }
        None
    }

    fn give_back(&self, connection: AsyncSmtpConnection) {
        self.idle
            .lock()
            .expect("the idle list is never poisoned")
            .push(IdleConnection {
                connection,
                since: Instant::now(),
            });
    }
}

/// A tenant's e-mail secrets.
#[derive(Default)]
struct Secrets {
    smtp_password: Option<String>,
    dkim_key: Option<String>,
}

/// The headers a survey e-mail's DKIM signature covers: those a reader and a mailbox
/// provider rely on, `List-Unsubscribe` and `List-Unsubscribe-Post` among them (RFC 8058
/// requires both to be signed, so that no relay can add or change them). Not
/// `Content-Type`: lettre keeps a multipart message's top-level `Content-Type` with the body,
/// so it is not among the headers it signs, and listing it would make every signature fail
/// (found by verifying the signature in `tests/email.rs`).
const DKIM_HEADERS: [&str; 9] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
];

/// The signing configuration, or why the key cannot be used.
pub fn dkim_config(settings: &DkimSettings, private_key: &str) -> Result<DkimConfig, String> {
    let algorithm = match settings.algorithm {
        DkimAlgorithm::Rsa => DkimSigningAlgorithm::Rsa,
        DkimAlgorithm::Ed25519 => DkimSigningAlgorithm::Ed25519,
    };
    let key = DkimSigningKey::new(private_key.trim(), algorithm).map_err(|_| {
        match settings.algorithm {
            DkimAlgorithm::Rsa => "the DKIM key is not an RSA private key in PKCS#1 PEM",
            DkimAlgorithm::Ed25519 => "the DKIM key is not a base64 Ed25519 seed of 32 bytes",
        }
        .to_owned()
    })?;
    Ok(DkimConfig::new(
        settings.selector.clone(),
        settings.domain.clone(),
        key,
        DKIM_HEADERS
            .iter()
            .map(|h| HeaderName::new_from_ascii_str(h))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// The gateway's DKIM signature from `[email.dkim]`; an unreadable key stops the start.
fn gateway_dkim(cfg: &EmailDkimConfig) -> anyhow::Result<Option<DkimConfig>> {
    if cfg.domain.is_empty() {
        return Ok(None);
    }
    let key = if cfg.private_key.is_empty() {
        std::fs::read_to_string(&cfg.private_key_file)
            .map_err(|e| anyhow::anyhow!("email.dkim.private_key_file: {e}"))?
    } else {
        cfg.private_key.clone()
    };
    let settings = DkimSettings {
        domain: cfg.domain.to_ascii_lowercase(),
        selector: cfg.selector.to_ascii_lowercase(),
        algorithm: cfg.algorithm,
    };
    anyhow::ensure!(
        !settings.selector.is_empty(),
        "email.dkim.selector is required with email.dkim.domain"
    );
    dkim_config(&settings, &key)
        .map(Some)
        .map_err(|e| anyhow::anyhow!("email.dkim: {e}"))
}

pub struct EmailSender {
    db: Db,
    cfg: EmailConfig,
    public_url: String,
    allow_private_networks: bool,
    /// Extra trusted roots (`email.ca_file`).
    roots: Vec<Certificate>,
    /// The gateway's own DKIM signature (`[email.dkim]`).
    gateway_dkim: Option<Arc<DkimConfig>>,
    pools: Mutex<HashMap<Server, Arc<Pool>>>,
}

/// Pools kept at most; beyond, the idle ones are dropped and made again on use.
const MAX_POOLS: usize = 1024;

impl EmailSender {
    pub fn new(
        db: Db,
        cfg: EmailConfig,
        public_url: &str,
        allow_private_networks: bool,
    ) -> anyhow::Result<EmailSender> {
        let roots = if cfg.ca_file.is_empty() {
            Vec::new()
        } else {
            let pem = std::fs::read(&cfg.ca_file)
                .map_err(|e| anyhow::anyhow!("email.ca_file {}: {e}", cfg.ca_file))?;
            vec![Certificate::from_pem(&pem)
                .map_err(|e| anyhow::anyhow!("email.ca_file {}: {e}", cfg.ca_file))?]
        };
        let gateway_dkim = gateway_dkim(&cfg.dkim)?.map(Arc::new);
        Ok(EmailSender {
            db,
            cfg,
            public_url: public_url.trim_end_matches('/').to_owned(),
            allow_private_networks,
            roots,
            gateway_dkim,
            pools: Mutex::new(HashMap::new()),
        })
    }

    /// Where survey e-mails go when a tenant configures no server, for the start-up banner.
    pub fn default_transport(&self) -> String {
        if self.cfg.smtp.host.is_empty() {
            format!("written as .eml files to {}", self.cfg.file_dir)
        } else {
            format!("sent through {}:{}", self.cfg.smtp.host, self.cfg.smtp.port)
        }
    }

    /// The tenant's settings, SMTP password and DKIM key, or the gateway's defaults.
    async fn settings(&self, tenant_id: Uuid) -> Result<(EmailSettings, Secrets), SendError> {
        let stored = channel_configs::credentials(&self.db, tenant_id, channels::email::NAME)
            .await
            .map_err(|e| SendError::transient(format!("loading the e-mail settings: {e}")))?;
        match stored {
            Some(creds) => {
                let settings =
                    EmailSettings::of(&creds).map_err(|e| SendError::permanent(None, e.message))?;
                let secret = |name: &str| creds.secret(name).map(|s| s.expose().to_owned());
                let secrets = Secrets {
                    smtp_password: secret(SMTP_PASSWORD),
                    dkim_key: secret(DKIM_PRIVATE_KEY),
                };
                Ok((settings, secrets))
            }
            None => Ok((
                EmailSettings {
                    from: self.cfg.from.clone(),
                    reply_to_domain: Some(self.cfg.reply_to_domain.clone())
                        .filter(|d| !d.is_empty()),
                    smtp: None,
                    inbound_username: None,
                    dkim: None,
                    sendgrid_verification_key: None,
                },
                Secrets::default(),
            )),
        }
    }

    /// The message for `m`, and its Message-ID (without angle brackets).
    fn message(
        &self,
        m: &OutboundMessage,
        settings: &EmailSettings,
        key: &[u8],
        dkim: Option<&DkimConfig>,
    ) -> Result<(Message, String), SendError> {
        let bad_settings = |what: &str| SendError::permanent(None, format!("the e-mail {what}"));
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| bad_settings("sender is not an address"))?;
        let to: Mailbox = m.to.parse().map_err(|_| SendError {
            verdict: Some(AddressVerdict::Invalid),
            ..SendError::permanent(None, "the recipient is not an e-mail address")
        })?;
        let texts = texts::for_language(&m.language);
        let (low, high) = m
            .metric
            .numeric_scale()
            .map(|s| s.range())
            .ok_or_else(|| bad_settings("survey asks for no score"))?;
        let rating_links: Vec<(i16, String)> = (low..=high)
            .map(|score| {
                let token = links::sign(key, Purpose::Rating, m.invitation_id, Some(score as u8));
                (score, format!("{}/r/{token}/{score}", self.public_url))
            })
            .collect();
        let unsubscribe = links::sign(key, Purpose::Unsubscribe, m.invitation_id, None);
        let unsubscribe_url = format!("{}/u/{unsubscribe}", self.public_url);
        let rendered = render(&SurveyMail {
            texts,
            question: &m.body,
            metric: m.metric,
            rating_links: &rating_links,
            unsubscribe_url: &unsubscribe_url,
        });

        let domain = from.email.domain().to_owned();
        let message_id = format!("{}@{domain}", m.invitation_id);
        // RFC 2369 / RFC 8058: the HTTPS URI first; a mailto where replies are received.
        let mut list_unsubscribe = format!("<{unsubscribe_url}>");
        let mut builder = Message::builder()
            .from(from)
            .to(to)
            .subject(rendered.subject)
            .message_id(Some(format!("<{message_id}>")));
        if let Some(reply_domain) = &settings.reply_to_domain {
            let reply = links::sign(key, Purpose::Reply, m.invitation_id, None);
            let reply_to: Mailbox = format!("reply+{reply}@{reply_domain}")
                .parse()
                .map_err(|_| bad_settings("reply domain is not usable"))?;
            builder = builder.reply_to(reply_to);
            list_unsubscribe.push_str(&format!(
                ", <mailto:reply+{unsubscribe}@{reply_domain}?subject=unsubscribe>"
            ));
        }
        let mut message = builder
            .header(ListUnsubscribe(list_unsubscribe))
            .header(ListUnsubscribePost)
            .multipart(MultiPart::alternative_plain_html(
                rendered.text,
                rendered.html,
            ))
            .map_err(|e| SendError::permanent(None, format!("building the e-mail: {e}")))?;
        if let Some(dkim) = dkim {
            message.sign(dkim);
        }
        Ok((message, message_id))
    }

    /// The tenant's server, resolved and checked, or the gateway's; with the password that
    /// logs in to it.
    async fn server<'a>(
        &'a self,
        smtp: Option<(&'a SmtpSettings, Option<&'a str>)>,
    ) -> Result<Option<(Server, Option<&'a str>)>, SendError> {
        let (host, port, tls, username, password, guarded) = match smtp {
            Some((s, password)) => (
                s.host.as_str(),
                s.port,
                s.tls,
                s.username.as_deref(),
                password,
                true,
            ),
            None if self.cfg.smtp.host.is_empty() => return Ok(None),
            // The operator's own server: trusted where it is (a relay on loopback, say).
            None => (
                self.cfg.smtp.host.as_str(),
                self.cfg.smtp.port,
                self.cfg.smtp.tls,
                Some(self.cfg.smtp.username.as_str()).filter(|u| !u.is_empty()),
                Some(self.cfg.smtp.password.as_str()).filter(|p| !p.is_empty()),
                false,
            ),
        };
        let unreachable = || SendError::transient("the SMTP server's name did not resolve");
        let addresses = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| unreachable())?;
        let mut checked = None;
        for address in addresses {
            let public = channels::outbound::is_public(address.ip());
            if guarded && !public && !self.allow_private_networks {
                return Err(SendError::permanent(
                    None,
                    "the SMTP server is on a private network, which this gateway does not call",
                ));
            }
            if guarded && public && tls == SmtpTls::None {
                return Err(SendError::permanent(
                    None,
                    "plain-text SMTP is allowed only to servers on a private network",
                ));
            }
            checked.get_or_insert(address.ip());
        }
        let ip = checked.ok_or_else(unreachable)?;
        let server = Server {
            ip,
            port,
            tls,
            host: host.to_owned(),
            username: username.map(str::to_owned),
            password_sha256: password.map(|p| Sha256::digest(p.as_bytes()).into()),
        };
        Ok(Some((server, password)))
    }

    fn pool(&self, server: &Server) -> Result<Arc<Pool>, SendError> {
        let mut pools = self.pools.lock().expect("the pool map is never poisoned");
        if let Some(pool) = pools.get(server) {
            return Ok(pool.clone());
        }
        if pools.len() >= MAX_POOLS {
            pools.clear();
        }
        let tls = match server.tls {
            SmtpTls::None => None,
            _ => {
                let mut params = TlsParameters::builder(server.host.clone());
                for root in &self.roots {
                    params = params.add_root_certificate(root.clone());
                }
                Some(params.build_rustls().map_err(|e| {
                    SendError::permanent(None, format!("the SMTP TLS settings: {e}"))
                })?)
            }
        };
        let pool = Arc::new(Pool {
            idle: Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(self.cfg.pool_size.max(1) as usize),
            tls,
        });
        pools.insert(server.clone(), pool.clone());
        Ok(pool)
    }

    /// Hands `message` to the server on one of its pooled connections: a connection that has
    /// waited is tried first, and if the server has closed it meanwhile, a new one once.
    async fn send_smtp(
        &self,
        server: &Server,
        password: Option<&str>,
        message: &Message,
    ) -> Result<(), SendError> {
        let pool = self.pool(server)?;
        let _permit = pool
            .permits
            .acquire()
            .await
            .expect("the permits are never closed");
        let timeout = Duration::from_millis(self.cfg.timeout_ms);
        let body = message.formatted();
        let mut reused = pool.take_idle();
        loop {
            let was_reused = reused.is_some();
            let mut connection = match reused.take() {
                Some(c) => c,
                None => tokio::time::timeout(timeout, self.connect(server, &pool, password))
                    .await
                    .map_err(|_| SendError::transient("the SMTP server could not be reached"))??,
            };
            let sent =
                tokio::time::timeout(timeout, connection.send(message.envelope(), &body)).await;
            match sent {
                Ok(Ok(_)) => {
                    pool.give_back(connection);
                    return Ok(());
                }
                // Closed by the server while idle: no reply code, nothing was accepted.
                Ok(Err(e)) if was_reused && e.status().is_none() => continue,
                // lettre has closed the connection after any failure.
                Ok(Err(e)) => return Err(refused(e)),
                Err(_) => return Err(SendError::transient("the SMTP server did not answer")),
            }
        }
    }

    /// A new connection to the checked address: greeting, EHLO, STARTTLS or implicit TLS as
    /// the server's settings say, and the login.
    async fn connect(
        &self,
        server: &Server,
        pool: &Pool,
        password: Option<&str>,
    ) -> Result<AsyncSmtpConnection, SendError> {
        let address = std::net::SocketAddr::new(server.ip, server.port);
        let hello = ClientId::default();
        let mut connection = match (server.tls, &pool.tls) {
            (SmtpTls::Implicit, Some(tls)) => {
                AsyncSmtpConnection::connect_tokio1(address, None, &hello, Some(tls.clone()), None)
                    .await
                    .map_err(refused)?
            }
            (_, tls) => {
                let tcp = tokio::net::TcpStream::connect(address)
                    .await
                    .map_err(|_| SendError::transient("the SMTP server could not be reached"))?;
                let _ = tcp.set_nodelay(true);
                let mut connection =
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello)
                        .await
                        .map_err(refused)?;
                if let Some(tls) = tls {
                    // Required: a server that does not offer STARTTLS is refused.
                    connection
                        .starttls(tls.clone(), &hello)
                        .await
                        .map_err(refused)?;
                }
                connection
            }
        };
        if let (Some(user), Some(password)) = (&server.username, password) {
            connection
                .auth(
                    &[Mechanism::Plain, Mechanism::Login],
                    &Credentials::new(user.clone(), password.to_owned()),
                )
                .await
                .map_err(refused)?;
        }
        Ok(connection)
    }
}

#[async_trait]
impl Sender for EmailSender {
    fn channel(&self) -> &'static str {
        channels::vocabulary::Channel::Email.as_str()
    }

    async fn pace(&self, tenant_id: Uuid) -> Result<Pace, SendError> {
        Ok(Pace {
            key: format!("email:{tenant_id}"),
            per_second: self.cfg.per_second,
        })
    }

    async fn send(&self, m: &OutboundMessage) -> Result<Receipt, SendError> {
        let (settings, secrets) = self.settings(m.tenant_id).await?;
        let key = tenants::link_key(&self.db, m.tenant_id)
            .await
            .map_err(|e| SendError::transient(format!("loading the tenant's link key: {e}")))?
            .ok_or_else(|| SendError::permanent(None, "the tenant no longer exists"))?;
        let dkim = self.signer(&settings, &secrets)?;
        let (message, message_id) = self.message(m, &settings, &key, dkim.as_deref())?;
        self.transmit(&settings, &secrets, message).await?;
        // No sender kept: a reply goes to the reply address, not to `from`, so replies are not
        // matched by the address they were sent to.
        Ok(Receipt {
            provider_ref: message_id,
            sender: None,
        })
    }
}

impl EmailSender {
    /// The DKIM signature a tenant's mail gets: the tenant's own key; else the gateway's, for
    /// mail that leaves through the gateway's transport (a tenant's own server may sign for
    /// itself).
    fn signer(
        &self,
        settings: &EmailSettings,
        secrets: &Secrets,
    ) -> Result<Option<Arc<DkimConfig>>, SendError> {
        match (&settings.dkim, secrets.dkim_key.as_deref()) {
            (Some(dkim), Some(key)) => dkim_config(dkim, key)
                .map(|c| Some(Arc::new(c)))
                .map_err(|e| SendError::permanent(None, e)),
            _ if settings.smtp.is_none() => Ok(self.gateway_dkim.clone()),
            _ => Ok(None),
        }
    }

    /// Hands a finished message to the tenant's server, the gateway's, or the mail folder.
    async fn transmit(
        &self,
        settings: &EmailSettings,
        secrets: &Secrets,
        message: Message,
    ) -> Result<(), SendError> {
        let tenant_smtp = settings
            .smtp
            .as_ref()
            .map(|s| (s, secrets.smtp_password.as_deref()));
        match self.server(tenant_smtp).await? {
            None => {
                tokio::fs::create_dir_all(&self.cfg.file_dir)
                    .await
                    .map_err(|e| SendError::transient(format!("the mail folder: {e}")))?;
                AsyncFileTransport::<Tokio1Executor>::new(&self.cfg.file_dir)
                    .send(message)
                    .await
                    .map_err(|e| SendError::transient(format!("writing the e-mail: {e}")))?;
            }
            Some((server, password)) => self.send_smtp(&server, password, &message).await?,
        }
        Ok(())
    }

    /// A plain-text message from the tenant's sender to one of its own people (an alert's
    /// owner), through the same transport and signature as its survey e-mails.
    pub async fn send_notice(
        &self,
        tenant_id: Uuid,
        to: &str,
        subject: &str,
        text: String,
    ) -> Result<(), SendError> {
        let (settings, secrets) = self.settings(tenant_id).await?;
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| SendError::permanent(None, "the e-mail sender is not an address"))?;
        let to: Mailbox = to.parse().map_err(|_| SendError {
            verdict: Some(AddressVerdict::Invalid),
            ..SendError::permanent(None, "the recipient is not an e-mail address")
        })?;
        let mut message = Message::builder()
            .from(from)
            .to(to)
            .subject(subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(text)
            .map_err(|e| SendError::permanent(None, format!("building the e-mail: {e}")))?;
        if let Some(dkim) = self.signer(&settings, &secrets)? {
            message.sign(&dkim);
        }
        self.transmit(&settings, &secrets, message).await
    }
}

/// What an SMTP failure means for the invitation. The server's own text is not kept: it can
/// quote the address.
fn refused(e: lettre::transport::smtp::Error) -> SendError {
    let Some(code) = e.status() else {
        // No reply code: the connection, TLS or a timeout.
        return SendError::transient("the SMTP server could not be reached");
    };
    let code_text = code.to_string();
    let numeric: u16 = code_text.parse().unwrap_or(0);
    let with_code = |retryable: bool, message: &str| SendError {
        retryable,
        code: Some(code_text.clone()),
        message: message.to_owned(),
        retry_after: None,
        verdict: None,
    };
    match numeric {
        // Mailbox unavailable, not local, name not allowed: the address does not work.
        550 | 551 | 553 => SendError {
            verdict: Some(AddressVerdict::Invalid),
            ..with_code(false, "the recipient's server refused the address")
        },
        // The login failed: the tenant's settings, not the address; retried until fixed or spent.
        530 | 534 | 535 | 538 => with_code(true, "the SMTP server refused the login"),
        // Mailbox full: often cleared later.
        552 => with_code(true, "the recipient's mailbox is full"),
        500..=599 => with_code(false, "the SMTP server refused the message"),
        _ => with_code(true, "the SMTP server asked to try again later"),
    }
}

/// `List-Unsubscribe` (RFC 2369): the HTTPS one-click URI and, where replies are received, a
/// mailto.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }

    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_owned())
    }
}
