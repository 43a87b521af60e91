//! Delivery through an SMTP relay with mail-send. The async client runs on a
//! current-thread tokio runtime owned by the mail thread alone.

use super::templates::envelope_address;
use super::Delivery;
use crate::config::{MailConfig, Security};
use crate::store::OutboxMail;
use mail_send::smtp::message::Message;
use mail_send::SmtpClientBuilder;
use std::time::Duration;

pub(super) struct Smtp {
    runtime: tokio::runtime::Runtime,
    host: String,
    port: u16,
    security: Security,
    credentials: Option<(String, String)>,
    timeout: Duration,
    from: String,
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
            from: envelope_address(config.from.as_deref().unwrap_or("")).to_string(),
        }
    }

    pub(super) fn deliver(&mut self, mail: &OutboxMail) -> Delivery {
        let message = Message::new(self.from.as_str(), [mail.to.as_str()], mail.mime.as_bytes());
        let mut builder = SmtpClientBuilder::new(self.host.as_str(), self.port)
            .implicit_tls(self.security == Security::Tls)
            .timeout(self.timeout);
        if let Some((user, password)) = &self.credentials {
            builder = builder.credentials((user.as_str(), password.as_str()));
        }
        let result = self.runtime.block_on(async {
            match self.security {
                Security::Plain => builder.connect_plain().await?.send(message).await,
                Security::Starttls | Security::Tls => builder.connect().await?.send(message).await,
            }
        });
        match result {
            Ok(()) => Delivery::Sent,
            Err(mail_send::Error::UnexpectedReply(reply)) if reply.code() >= 500 => {
                Delivery::Permanent(format!("server replied {}", reply.code()))
            }
            Err(e) => Delivery::Temporary(e.to_string()),
        }
    }
}
