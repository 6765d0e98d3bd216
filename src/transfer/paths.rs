//! Which paths an offer may name: relative ones, inside the receiver's
//! directory, whoever sent them (`protocol-spec.md` §6.9). A path is
//! components joined by `/`; each is non-empty, not `.` or `..`, holds no
//! NUL or `\` (a separator elsewhere) and is at most 255 bytes. The
//! checks that need the disk (symlinks on the way) are in `disk.rs`.

use std::fmt;

/// Longest path component, in bytes (most file systems' limit).
pub const MAX_COMPONENT: usize = 255;

/// Why a path is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathError {
    /// Empty, or an empty component (`a//b`, a trailing `/`).
    Empty,
    /// Starts at the root.
    Absolute,
    /// A `.` or `..` component.
    Dots,
    /// A NUL or a backslash.
    Character,
    /// A component over [`MAX_COMPONENT`] bytes.
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "an empty path or path component",
            Self::Absolute => "an absolute path",
            Self::Dots => "a `.` or `..` component",
            Self::Character => "a NUL or backslash in a name",
            Self::TooLong => "a name over 255 bytes",
        })
    }
}

/// The components of `path` if it is a safe relative path.
pub fn check(path: &str) -> Result<Vec<&str>, PathError> {
    if path.starts_with('/') {
        return Err(PathError::Absolute);
    }
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    let components: Vec<&str> = path.split('/').collect();
    for component in &components {
        match *component {
            "" => return Err(PathError::Empty),
            "." | ".." => return Err(PathError::Dots),
            name if name.contains(['\0', '\\']) => return Err(PathError::Character),
            name if name.len() > MAX_COMPONENT => return Err(PathError::TooLong),
            _ => {}
        }
    }
    Ok(components)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        assert_eq!(check("a/b c/ü.txt"), Ok(vec!["a", "b c", "ü.txt"]));
        assert_eq!(check(".hidden"), Ok(vec![".hidden"]));
        assert_eq!(check("/etc/x"), Err(PathError::Absolute));
        assert_eq!(check("../x"), Err(PathError::Dots));
        assert_eq!(check("a/../../x"), Err(PathError::Dots));
        assert_eq!(check("a/./x"), Err(PathError::Dots));
        assert_eq!(check(""), Err(PathError::Empty));
        assert_eq!(check("a//b"), Err(PathError::Empty));
        assert_eq!(check("a/"), Err(PathError::Empty));
        assert_eq!(check("a\\..\\x"), Err(PathError::Character));
        assert_eq!(check("a\0b"), Err(PathError::Character));
        assert_eq!(check(&"x".repeat(256)), Err(PathError::TooLong));
    }
}
