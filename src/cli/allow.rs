//! The allow-list of `--allow` and `--allow-file`: which members may open
//! streams to this node and be opened to.

use std::path::Path;

use tinynode::NodeId;

use super::options::AllowOptions;

/// The members `options` allows, or `None` when it names none (everyone
/// is allowed). A file lists one key per line; blank lines and text after
/// `#` are ignored. A line that is not a key is an error naming the file
/// and line, so a typo never opens the node to everyone.
pub fn load(options: &AllowOptions) -> Result<Option<Vec<NodeId>>, String> {
    if options.is_open() {
        return Ok(None);
    }
    let mut keys = options.keys.clone();
    for path in &options.files {
        keys.extend(read_file(path)?);
    }
    keys.sort();
    keys.dedup();
    Ok(Some(keys))
}

fn read_file(path: &Path) -> Result<Vec<NodeId>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading the allow-list {}: {error}", path.display()))?;
    parse(&text).map_err(|(line, word)| {
        format!(
            "{}:{line}: {word:?} is not a key (64 hex digits, as `tinynode id` prints)",
            path.display()
        )
    })
}

/// The keys of an allow-list file's text, or the first bad line's number
/// and word.
fn parse(text: &str) -> Result<Vec<NodeId>, (usize, String)> {
    let mut keys = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let key = NodeId::from_hex(line).ok_or_else(|| (index + 1, line.to_owned()))?;
        keys.push(key);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ab00000000000000000000000000000000000000000000000000000000000001";

    #[test]
    fn comments_and_blank_lines_are_skipped() {
        let text = format!("# laptop\n\n  {KEY}  # mine\n{}\n", KEY.to_uppercase());
        let keys = parse(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys.iter().all(|k| k.to_string() == KEY));
    }

    #[test]
    fn a_bad_line_is_named() {
        let text = format!("{KEY}\nabc123\n");
        assert_eq!(parse(&text), Err((2, "abc123".to_owned())));
    }

    #[test]
    fn no_option_allows_everyone_and_an_empty_file_no_one() {
        assert_eq!(load(&AllowOptions::default()), Ok(None));
        let dir = std::env::temp_dir().join(format!("tinynode-allow-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "# nobody yet\n").unwrap();
        let options = AllowOptions {
            keys: Vec::new(),
            files: vec![empty],
        };
        assert_eq!(load(&options), Ok(Some(Vec::new())));
        let missing = AllowOptions {
            keys: Vec::new(),
            files: vec![dir.join("missing")],
        };
        assert!(load(&missing).unwrap_err().contains("missing"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
