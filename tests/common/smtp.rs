//! A real SMTP server on loopback for the e-mail tests: the `mailin` crate's SMTP state machine
//! (parser, EHLO, AUTH, MAIL, RCPT, DATA) behind TCP sockets, with STARTTLS through rustls on a
//! certificate signed by a CA made for the test. Blocking I/O on a thread per connection.
//!
//! It accepts one login, refuses any recipient whose local part is `bounce` with 550 (a
//! mailbox that does not exist) and `later` with 451, and keeps every message it took.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{AuthMechanism, Handler, Response, SessionBuilder};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub const USER: &str = "acme-mailer";
pub const PASSWORD: &str = "correct horse battery staple";

/// A message as the server received it.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: Vec<u8>,
    /// Whether the message came over TLS, and after which login.
    pub tls: bool,
    pub user: Option<String>,
}

pub struct SmtpServer {
    pub port: u16,
    /// The test CA's certificate (PEM): the gateway's `email.ca_file`.
    pub ca_pem: String,
    mail: Arc<Mutex<Vec<ReceivedMail>>>,
    connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let (ca_pem, config) = tls_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mail = Arc::new(Mutex::new(Vec::new()));
        let kept = mail.clone();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let accepted = connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                accepted.fetch_add(1, Ordering::Relaxed);
                let (config, kept) = (config.clone(), kept.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, config, kept);
                });
            }
        });
        SmtpServer {
            port,
            ca_pem,
            mail,
            connections,
        }
    }

    /// How many connections it has accepted (a pooled client keeps a few open).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.mail.lock().unwrap().clone()
    }

    /// How many messages it has taken.
    pub fn count(&self) -> usize {
        self.mail.lock().unwrap().len()
    }

    /// Waits up to `timeout` for `n` messages.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let until = std::time::Instant::now() + timeout;
        loop {
            let got = self.received();
            if got.len() >= n || std::time::Instant::now() > until {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost.
fn tls_config() -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let chain = vec![
        CertificateDer::from(cert.der().to_vec()),
        CertificateDer::from(ca.der().to_vec()),
    ];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    (ca.pem(), Arc::new(config))
}

struct Mailbox {
    tls: Arc<AtomicBool>,
    user: Option<String>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    kept: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl Handler for Mailbox {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.from = from.to_owned();
        self.to.clear();
        self.data.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match to.split('@').next() {
            Some("bounce") => mailin::response::NO_MAILBOX,
            Some("later") => Response::custom(451, "Try again later".into()),
            _ => {
                self.to.push(to.to_owned());
                mailin::response::OK
            }
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.kept.lock().unwrap().push(ReceivedMail {
            from: self.from.clone(),
            to: self.to.clone(),
            data: std::mem::take(&mut self.data),
            tls: self.tls.load(Ordering::SeqCst),
            user: self.user.clone(),
        });
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        if user == USER && password == PASSWORD {
            self.user = Some(user.to_owned());
            mailin::response::AUTH_OK
        } else {
            mailin::response::INVALID_CREDENTIALS
        }
    }
}

enum Conn {
    Plain(BufReader<TcpStream>),
    Tls(Box<BufReader<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>>),
}

impl Conn {
    fn read_line(&mut self, line: &mut Vec<u8>) -> std::io::Result<usize> {
        match self {
            Conn::Plain(r) => r.read_until(b'\n', line),
            Conn::Tls(r) => r.read_until(b'\n', line),
        }
    }

    fn write(&mut self, response: &Response) -> std::io::Result<()> {
        let mut out = Vec::new();
        response.write_to(&mut out)?;
        match self {
            Conn::Plain(r) => r.get_mut().write_all(&out),
            Conn::Tls(r) => {
                r.get_mut().write_all(&out)?;
                r.get_mut().flush()
            }
        }
    }
}

fn serve(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    kept: Arc<Mutex<Vec<ReceivedMail>>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // Replies are small writes: without this, Nagle and delayed ACKs hold each for ~40 ms.
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?.ip();
    let tls = Arc::new(AtomicBool::new(false));
    let mut builder = SessionBuilder::new("smtp.test");
    builder.enable_start_tls().enable_auth(AuthMechanism::Plain);
    let mut session = builder.build(
        peer,
        Mailbox {
            tls: tls.clone(),
            user: None,
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
            kept,
        },
    );
    let mut conn = Conn::Plain(BufReader::new(stream));
    conn.write(&session.greeting())?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let response = session.process(&line);
        match response.action {
            mailin::Action::Reply => conn.write(&response)?,
            mailin::Action::NoReply => {}
            mailin::Action::Close => {
                conn.write(&response)?;
                return Ok(());
            }
            mailin::Action::UpgradeTls => {
                conn.write(&response)?;
                let Conn::Plain(reader) = conn else {
                    return Ok(());
                };
                let tcp = reader.into_inner();
                let server =
                    rustls::ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
                conn = Conn::Tls(Box::new(BufReader::new(rustls::StreamOwned::new(
                    server, tcp,
                ))));
                tls.store(true, Ordering::SeqCst);
                session.tls_active();
            }
        }
    }
}
