//! The paging convention of the JSON listings (`/api/v1/groups`, `/api/v1/metrics`): pages
//! in grouping-key order, `limit` groups at most, and a page that is not the last carries
//! `next`, an opaque cursor that `after` takes to continue after it. The cursor names the
//! last group sent, so paging stays stable while groups come and go. Query strings are
//! form-decoded here too.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use percent_encoding::percent_decode_str;

use super::error::ApiError;
use crate::model::{GroupingKey, Label};

/// A query string's parameters, form-decoded, in order.
///
/// # Errors
/// [`ApiError::InvalidParameter`] for a name or value that is not UTF-8 once decoded.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

/// `application/x-www-form-urlencoded`: `+` is a space, then percent escapes.
fn form_decode(text: &str) -> Result<String, ApiError> {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid("query parameter is not UTF-8 after decoding"))
}

/// A page's `next`: the last key, as URL-safe base64 of a JSON array of `[name, value]`.
pub fn encode_cursor(key: &GroupingKey) -> String {
    let pairs: Vec<(&str, &str)> = key.labels().iter().map(|l| (&*l.name, &*l.value)).collect();
    // Serializing string pairs cannot fail.
    let json = serde_json::to_vec(&pairs).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The key a cursor from [`encode_cursor`] names (the group need not exist any more).
///
/// # Errors
/// [`ApiError::InvalidParameter`] when `text` is not such a cursor.
pub fn decode_cursor(text: &str) -> Result<GroupingKey, ApiError> {
    let bad = || invalid("invalid after: use the next value of the previous page");
    let json = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let pairs: Vec<(String, String)> = serde_json::from_slice(&json).map_err(|_| bad())?;
    Ok(GroupingKey::new(
        pairs
            .into_iter()
            .map(|(name, value)| Label::new(name, value))
            .collect(),
    ))
}

/// The largest `limit` of a page. A page of `/api/v1/metrics` streams like the whole list,
/// so this bounds no memory there; a larger one is a mistake (leaving `limit` out asks for
/// every group), and both listings take the same range.
pub const MAX_LIMIT: usize = 10_000;

/// A `limit` value: a whole number from 1 to [`MAX_LIMIT`].
///
/// # Errors
/// [`ApiError::InvalidParameter`] for anything else.
pub fn parse_limit(value: &str) -> Result<usize, ApiError> {
    let n: usize = value
        .parse()
        .map_err(|_| invalid(&format!("invalid limit {value:?}: expected a whole number")))?;
    if !(1..=MAX_LIMIT).contains(&n) {
        return Err(invalid(&format!(
            "invalid limit {n}: a page holds 1 to {MAX_LIMIT} groups \
             (leave limit out for every group)"
        )));
    }
    Ok(n)
}

/// A 400 with `reason`.
pub fn invalid(reason: &str) -> ApiError {
    ApiError::InvalidParameter(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_bad_ones_are_refused() {
        let key = GroupingKey::new(vec![Label::new("job", "a\"/b"), Label::new("i", "é")]);
        assert_eq!(decode_cursor(&encode_cursor(&key)).expect("cursor"), key);
        for bad in ["", "!!", "e30", "W1siam9iIl1d"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_is_form_decoded() {
        let pairs = query_pairs(Some("a+b=%7Bx%7D&flag&=v")).expect("query");
        assert_eq!(
            pairs,
            [
                ("a b".to_owned(), "{x}".to_owned()),
                ("flag".to_owned(), String::new()),
                (String::new(), "v".to_owned())
            ]
        );
        assert!(query_pairs(Some("x=%ff")).is_err());
    }
}
