//! kagi's integration tests: one crate, a module per area. Each test drives
//! a real server over real HTTP as a person would, reading mail from the
//! capture transport.

mod backup;
mod console;
mod crash;
mod files;
mod front;
mod hashing;
mod http;
mod import;
mod instances;
mod kaigo;
mod language;
mod limits;
mod logs;
mod metrics;
mod migrate;
mod notices;
mod pgtls;
mod portal;
mod postal;
mod register;
mod router;
mod sessions;
mod smtp;
mod stop;
mod support;
mod tidy;
mod timing;
