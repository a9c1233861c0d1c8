//! Where a ledger lives: a file path (the embedded SQLite database, one per
//! station) or a PostgreSQL URL (one ledger for the whole organisation).

use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    /// `postgres://user@host[:port]/database[?options]`.
    Postgres(String),
}

impl Location {
    /// `given`, else the station's own SQLite ledger.
    pub fn or_default(given: Option<&Location>) -> Location {
        given.cloned().unwrap_or_else(|| Location::Sqlite(super::default_path()))
    }

    /// A `postgres://` or `postgresql://` URL is a server; any other
    /// `scheme://` is refused (a typo such as `postgress://` must not become a
    /// directory tree); anything else is a path, as it always was.
    pub fn parse(text: &str) -> Result<Location, super::LedgerError> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Location::Postgres(text.to_string()));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(super::LedgerError::BadLocation(format!(
                "{}: unknown scheme {:?}; a ledger is a file path or a postgres://user@host/database URL",
                without_password(text),
                crate::text::escape(scheme)
            )));
        }
        Ok(Location::Sqlite(PathBuf::from(text)))
    }

    /// For messages: a URL's password is never shown.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => without_password(url),
        }
    }
}

/// The URL with its password replaced by `***`, wherever it was given: in the
/// user information (`user:PASSWORD@host`) or as a query parameter
/// (`?password=PASSWORD`, in any letter case).
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => param.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_servers_typos_are_refused_and_everything_else_a_path() {
        assert_eq!(
            Location::parse("/var/lib/certwipe/ledger.sqlite").unwrap(),
            Location::Sqlite("/var/lib/certwipe/ledger.sqlite".into())
        );
        assert_eq!(
            Location::parse("postgres-notes.sqlite").unwrap(),
            Location::Sqlite("postgres-notes.sqlite".into())
        );
        assert!(matches!(Location::parse("postgresql://station@db/ledger"), Ok(Location::Postgres(_))));
        let typo = Location::parse("postgress://station:s3cret@db/ledger").unwrap_err().to_string();
        assert!(typo.contains("unknown scheme \"postgress\"") && !typo.contains("s3cret"), "{typo}");
    }

    #[test]
    fn passwords_never_show() {
        let shown = |url: &str| Location::parse(url).unwrap().shown();
        let location =
            Location::parse("postgres://station:s3cret@db.example:5432/ledger?sslmode=disable").unwrap();
        assert_eq!(location.shown(), "postgres://station:***@db.example:5432/ledger?sslmode=disable");
        assert!(!location.to_string().contains("s3cret"));
        assert_eq!(shown("postgres://station@db/ledger"), "postgres://station@db/ledger");
        // A password holding '@' still never shows.
        assert_eq!(shown("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
        assert_eq!(
            shown("postgres://station@db/ledger?sslmode=disable&Password=s3cret&x=1"),
            "postgres://station@db/ledger?sslmode=disable&Password=***&x=1"
        );
        assert_eq!(shown("postgres://db/ledger?password=s3cret"), "postgres://db/ledger?password=***");
    }
}
