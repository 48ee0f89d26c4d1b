//! Validated store keys.

use std::fmt;

/// A relative, `/`-separated key such as `0/data/12/7` or `.zattrs`.
///
/// Segments are non-empty, never `.` or `..`, and use only ASCII letters,
/// digits, `.`, `_` and `-`, so a key can never escape the store's folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(String);

/// Why a string is not a store key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store key '{key}': {reason}")]
pub struct KeyError {
    /// The rejected text.
    pub key: String,
    /// Why.
    pub reason: &'static str,
}

impl StoreKey {
    /// Validates and wraps a key.
    ///
    /// # Errors
    /// [`KeyError`] for empty, absolute, traversing or oddly-charactered keys.
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        let reason = if key.is_empty() {
            Some("empty")
        } else if key.split('/').any(|s| s.is_empty()) {
            Some("empty segment (leading, trailing or double '/')")
        } else if key.split('/').any(|s| s == "." || s == "..") {
            Some("'.' and '..' segments are not allowed")
        } else if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        {
            Some("only ASCII letters, digits, '.', '_', '-' and '/' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(KeyError { key, reason }),
            None => Ok(Self(key)),
        }
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for StoreKey {
    type Error = KeyError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_and_odd_keys_are_refused() {
        for bad in [
            "", "../x", "a/../b", "/abs", "a//b", "a/", "a b", "a\\b", "./x",
        ] {
            assert!(StoreKey::new(bad).is_err(), "{bad}");
        }
        for good in ["0/data/1/2", ".zattrs", "a-b_c.d"] {
            assert_eq!(StoreKey::new(good).unwrap().as_str(), good);
        }
    }
}
