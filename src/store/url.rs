//! The `--database-url` the store connects to.

use std::str::FromStr;

/// A validated `--database-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH`; the file is created if absent.
    Sqlite { path: String },
    /// `postgres://…` or `postgresql://…`, passed to the driver as given.
    Postgres { url: String },
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(rest) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            let path = rest.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err("expected sqlite://PATH with a file path".into());
            }
            return Ok(Self::Sqlite {
                path: path.to_owned(),
            });
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: s.to_owned() });
        }
        Err("expected sqlite://PATH or postgres://…".into())
    }
}

impl DatabaseUrl {
    /// The URL with any password masked, for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("sqlite://{path}"),
            Self::Postgres { url } => match url::Url::parse(url) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    parsed.to_string()
                }
                _ => url.clone(),
            },
        }
    }
}
