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

    /// A `postgres://` or `postgresql://` URL is a server; anything else is a
    /// path, as it always was.
    pub fn parse(text: &str) -> Location {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_string())
        } else {
            Location::Sqlite(PathBuf::from(text))
        }
    }

    /// For messages: a URL's password is never shown.
    pub fn shown(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => without_password(url),
        }
    }
}

fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
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
    fn urls_are_servers_and_everything_else_a_path() {
        assert_eq!(
            Location::parse("/var/lib/certwipe/ledger.sqlite"),
            Location::Sqlite("/var/lib/certwipe/ledger.sqlite".into())
        );
        assert_eq!(
            Location::parse("postgres-notes.sqlite"),
            Location::Sqlite("postgres-notes.sqlite".into())
        );
        assert!(matches!(Location::parse("postgresql://station@db/ledger"), Location::Postgres(_)));
    }

    #[test]
    fn passwords_never_show() {
        let location = Location::parse("postgres://station:s3cret@db.example:5432/ledger?sslmode=disable");
        assert_eq!(location.shown(), "postgres://station:***@db.example:5432/ledger?sslmode=disable");
        assert!(!location.to_string().contains("s3cret"));
        assert_eq!(Location::parse("postgres://station@db/ledger").shown(), "postgres://station@db/ledger");
        // A password holding '@' still never shows.
        assert_eq!(Location::parse("postgres://u:p@ss@h/d").shown(), "postgres://u:***@h/d");
    }
}
