//! A `binary://` log URI as containerd's runc shim reads it: the URI's
//! path is the program, each query parameter becomes two arguments (its
//! name, then its first value; a parameter without `=` has the value "").
//! Go's URL parser percent-decodes both, and `+` in the query is a space.
//! containerd walks the query as a Go map, in no fixed order; here the
//! order is the URI's, which is one of the orders containerd could give.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// The logging program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    pub program: OsString,
    pub args: Vec<OsString>,
}

/// Whether `uri` names a logging binary (the runc shim decides by the
/// scheme of the stdout URI alone).
pub fn is_binary(uri: &str) -> bool {
    uri.starts_with("binary://")
}

/// Parses `binary://[HOST]/PATH[?QUERY][#FRAGMENT]`. The host, if any, is
/// not part of the path (as in Go's `url.URL.Path`).
pub fn parse(uri: &str) -> Result<Binary, String> {
    let rest = uri
        .strip_prefix("binary://")
        .ok_or_else(|| format!("{uri}: not a binary:// log URI"))?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = location.find('/').map_or("", |at| &location[at..]);
    if path.is_empty() {
        return Err(format!(
            "{uri}: the log URI names no program (binary:///PATH)"
        ));
    }
    let program = decode(path, false).map_err(|e| format!("{uri}: {e}"))?;
    let mut args = Vec::new();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(key, true).map_err(|e| format!("{uri}: {e}"))?;
        let value = decode(value, true).map_err(|e| format!("{uri}: {e}"))?;
        // Go's url.Values keeps every value; containerd passes the first.
        if seen.contains(&key) {
            continue;
        }
        seen.push(key.clone());
        args.push(OsString::from_vec(key));
        args.push(OsString::from_vec(value));
    }
    Ok(Binary {
        program: OsString::from_vec(program),
        args,
    })
}

/// Percent-decodes `text` (and `+` as a space in a query).
fn decode(text: &str, query: bool) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape in {text:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' if query => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(binary: &Binary) -> (String, Vec<String>) {
        (
            binary.program.to_string_lossy().into_owned(),
            binary
                .args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect(),
        )
    }

    #[test]
    fn the_path_is_the_program_and_the_query_its_arguments() {
        let binary = parse("binary:///usr/bin/logger?size=10&dir=%2Fvar%2Flog&flag").unwrap();
        assert_eq!(
            strings(&binary),
            (
                "/usr/bin/logger".to_string(),
                vec!["size", "10", "dir", "/var/log", "flag", ""]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )
        );
    }

    #[test]
    fn a_repeated_parameter_passes_its_first_value_once() {
        let binary = parse("binary:///l?a=1&b=x+y&a=2").unwrap();
        assert_eq!(strings(&binary).1, vec!["a", "1", "b", "x y"]);
    }

    #[test]
    fn a_host_and_a_fragment_are_not_the_path() {
        let binary = parse("binary://host/opt/my%20logger#frag").unwrap();
        assert_eq!(strings(&binary), ("/opt/my logger".to_string(), vec![]));
    }

    #[test]
    fn no_path_or_a_bad_escape_is_refused() {
        assert!(parse("binary://logger")
            .unwrap_err()
            .contains("names no program"));
        assert!(parse("binary:///l?a=%zz")
            .unwrap_err()
            .contains("bad escape"));
        assert!(parse("file:///l").is_err());
    }
}
