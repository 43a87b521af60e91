//! Delivery through an SMTP relay with mail-send: plain, STARTTLS or
//! implicit TLS, AUTH when credentials are set, the relay's certificate
//! checked against the public roots or a configured CA file, every step
//! under a timeout, and one connection kept for a burst of queued mails.
//! The async client runs on a current-thread tokio runtime owned by the
//! mail thread alone.

use super::Delivery;
use crate::address::envelope;
use crate::config::{MailConfig, Security};
use crate::store::OutboxMail;
use mail_send::smtp::message::Message;
use mail_send::{SmtpClient, SmtpClientBuilder};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// An open connection to the relay.
enum Connection {
    Plain(SmtpClient<TcpStream>),
    Tls(Box<SmtpClient<TlsStream<TcpStream>>>),
}

pub(super) struct Smtp {
    runtime: tokio::runtime::Runtime,
    host: String,
    port: u16,
    security: Security,
    credentials: Option<(String, String)>,
    timeout: Duration,
    from: String,
    /// Verifies the relay against the configured CA file; None: mail-send's
    /// own client with the public web roots.
    tls: Result<Option<tokio_rustls::TlsConnector>, String>,
    /// Kept between the mails of one burst; dropped when it fails or the
    /// burst ends.
    connection: Option<Connection>,
}

impl Smtp {
    pub(super) fn new(config: &MailConfig) -> Smtp {
        let smtp = &config.smtp;
        Smtp {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .enable_time()
                .build()
                .expect("building the mail thread's runtime"),
            host: smtp.host.clone().unwrap_or_default(),
            port: smtp.port(),
            security: smtp.security,
            credentials: smtp.username.clone().zip(smtp.password.clone()),
            timeout: Duration::from_secs(smtp.timeout_secs),
            from: envelope(config.from.as_deref().unwrap_or("")).to_string(),
            tls: tls_connector(smtp.ca_file.as_deref()),
            connection: None,
        }
    }

    /// Delivers one mail, on the open connection if there is one.
    pub(super) fn deliver(&mut self, mail: &OutboxMail) -> Delivery {
        if self.connection.is_none() {
            match self.connect() {
                Ok(c) => self.connection = Some(c),
                Err(e) => return classify(&e),
            }
        }
        let message = Message::new(self.from.as_str(), [mail.to.as_str()], mail.mime.as_bytes());
        let Some(connection) = self.connection.as_mut() else {
            return Delivery::Temporary("no connection".into());
        };
        let result = self.runtime.block_on(async {
            let sent = match connection {
                Connection::Plain(c) => c.send(message).await,
                Connection::Tls(c) => c.send(message).await,
            };
            // A refused message leaves the transaction open: reset it so
            // that the connection serves the next mail.
            if matches!(sent, Err(mail_send::Error::UnexpectedReply(_))) {
                let reset = match connection {
                    Connection::Plain(c) => c.rset().await,
                    Connection::Tls(c) => c.rset().await,
                };
                return (sent, reset.is_ok());
            }
            let usable = sent.is_ok();
            (sent, usable)
        });
        let (sent, usable) = result;
        if !usable {
            self.connection = None;
        }
        match sent {
            Ok(()) => Delivery::Sent,
            Err(e) => classify(&e),
        }
    }

    /// Ends the burst: says goodbye and closes the connection.
    pub(super) fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let timeout = self.timeout;
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(timeout, async {
                    match connection {
                        Connection::Plain(c) => c.quit().await,
                        Connection::Tls(c) => c.quit().await,
                    }
                })
                .await;
            });
        }
    }

    fn connect(&mut self) -> Result<Connection, mail_send::Error> {
        let mut builder = SmtpClientBuilder::new(self.host.clone(), self.port)
            .implicit_tls(self.security == Security::Tls)
            .timeout(self.timeout);
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials((user.clone(), password.clone()));
        }
        let timeout = self.timeout;
        match self.security {
            Security::Plain => self.runtime.block_on(async {
                // mail-send bounds only the TCP connect of a plain session;
                // a relay that never greets would hold the thread forever.
                match tokio::time::timeout(timeout, builder.connect_plain()).await {
                    Ok(c) => c.map(Connection::Plain),
                    Err(_) => Err(mail_send::Error::Timeout),
                }
            }),
            Security::Starttls | Security::Tls => {
                match &self.tls {
                    Ok(Some(c)) => builder.tls_connector = c.clone(),
                    Ok(None) => {}
                    Err(e) => {
                        return Err(mail_send::Error::Io(std::io::Error::other(e.clone())));
                    }
                }
                self.runtime
                    .block_on(builder.connect())
                    .map(|c| Connection::Tls(Box::new(c)))
            }
        }
    }
}

/// A TLS client that trusts only the CAs of `ca_file`; None without one.
fn tls_connector(
    ca_file: Option<&std::path::Path>,
) -> Result<Option<tokio_rustls::TlsConnector>, String> {
    let Some(path) = ca_file else {
        return Ok(None);
    };
    let config = crate::tls::client_config(Some(path), "mail.smtp.ca_file")?;
    Ok(Some(tokio_rustls::TlsConnector::from(Arc::new(config))))
}

/// A 5xx answer to the message (its recipient or its data) will never
/// change: the mail failed. Anything else (no connection, a timeout, a 4xx,
/// a refused login or certificate, which the operator can fix) is worth
/// another try.
fn classify(e: &mail_send::Error) -> Delivery {
    match e {
        mail_send::Error::UnexpectedReply(reply) if reply.code() >= 500 => {
            Delivery::Permanent(format!(
                "the server refused it: {} {}",
                reply.code(),
                reply.message()
            ))
        }
        other => Delivery::Temporary(other.to_string()),
    }
}
