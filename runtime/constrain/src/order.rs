//! Key order of the objects in JSON text. `serde_json::Value` keeps object keys sorted (unless the
//! `preserve_order` feature is on), which would lose the order of a schema's `properties`; this recovers it from
//! the text.

use std::collections::HashMap;

/// For each object in the text (by JSON pointer), its keys in order of appearance.
pub(crate) type Orders = HashMap<String, Vec<String>>;

/// Scans JSON text that `serde_json` already accepted. Never panics: on anything unexpected it stops and returns
/// what it has.
pub(crate) fn key_orders(text: &str) -> Orders {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        out: HashMap::new(),
    };
    let _ = s.value("", 0);
    s.out
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    out: Orders,
}

pub(crate) fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Scanner<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// A string token; returns its decoded value.
    fn string(&mut self) -> Option<String> {
        let start = self.i;
        if self.peek() != Some(b'"') {
            return None;
        }
        self.i += 1;
        loop {
            match self.peek()? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                _ => self.i += 1,
            }
        }
        let raw = std::str::from_utf8(self.b.get(start..self.i)?).ok()?;
        serde_json::from_str(raw).ok()
    }

    fn value(&mut self, ptr: &str, depth: usize) -> Option<()> {
        if depth > 256 {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'{' => {
                self.i += 1;
                let mut keys: Vec<String> = Vec::new();
                loop {
                    self.ws();
                    if self.peek()? == b'}' {
                        self.i += 1;
                        break;
                    }
                    let key = self.string()?;
                    self.ws();
                    if self.peek()? != b':' {
                        return None;
                    }
                    self.i += 1;
                    let child = format!("{ptr}/{}", escape_pointer(&key));
                    self.value(&child, depth + 1)?;
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b'}' => {
                            self.i += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
                self.out.insert(ptr.to_string(), keys);
            }
            b'[' => {
                self.i += 1;
                let mut k = 0;
                loop {
                    self.ws();
                    if self.peek()? == b']' {
                        self.i += 1;
                        break;
                    }
                    self.value(&format!("{ptr}/{k}"), depth + 1)?;
                    k += 1;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        b']' => {
                            self.i += 1;
                            break;
                        }
                        _ => return None,
                    }
                }
            }
            b'"' => {
                self.string()?;
            }
            _ => {
                while self
                    .peek()
                    .is_some_and(|c| !matches!(c, b',' | b'}' | b']') && !c.is_ascii_whitespace())
                {
                    self.i += 1;
                }
            }
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_key_order() {
        let o = super::key_orders(
            r#"{"properties": {"z": {}, "a/b": {"x":[1,{"q":2,"p":3}]}, "m": 1}, "type": "object"}"#,
        );
        assert_eq!(o[""], vec!["properties", "type"]);
        assert_eq!(o["/properties"], vec!["z", "a/b", "m"]);
        assert_eq!(o["/properties/a~1b/x/1"], vec!["q", "p"]);
    }
}
