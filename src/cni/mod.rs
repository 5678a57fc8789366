//! The CNI protocol: env, config, results, errors. No Linux in here.

pub mod args;
pub mod config;
pub mod env;
pub mod error;
pub mod json;
pub mod mac;
pub mod result;
pub mod version;

pub use config::NetConf;
pub use env::{Command, Env};
pub use error::{code, CniError};
pub use result::CniResult;
pub use version::Version;
