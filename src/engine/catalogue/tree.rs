//! The store's hierarchical interface: groups and typed variables at
//! slash-separated paths, kept under `meta/` in any storage backend.
//!
//! A path's first use decides whether it is a group or a variable: writing
//! `history/ingests` makes `history` a group and `ingests` a variable. A
//! variable holds one value (`write`) or a growing list of them (`append`,
//! `write_at`); each value carries its type (integer, float, text, JSON, or
//! an array with its element type and shape), so it reads back without the
//! caller knowing it. Attributes set on a node that does not exist yet are
//! buffered and written when it is created. docs/FORMAT.md gives the layout.
//!
//! Not synchronised: callers serialise writes (the store's writer does).

use crate::engine::{Array, DType};
use crate::storage::{Storage, StorageError, StoreKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// Where the tree lives in the store.
pub const TREE_PREFIX: &str = "meta";

const VARIABLE_HEADER: &str = ".gsvar";
const GROUP_HEADER: &str = ".gsgroup";

/// Why a tree operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Nothing at the path.
    #[error("{path}: not found")]
    NotFound {
        /// The path.
        path: String,
    },
    /// A variable operation on a group, or the reverse.
    #[error("{path}: is a {is}, not a {wanted}")]
    WrongKind {
        /// The path.
        path: String,
        /// What it is.
        is: &'static str,
        /// What the operation needs.
        wanted: &'static str,
    },
    /// A path that names no node.
    #[error("'{path}': not a tree path ({reason})")]
    BadPath {
        /// The path as given.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An index past the end of a list.
    #[error("{path}: entry {index} is past the end ({len} entries)")]
    OutOfRange {
        /// The path.
        path: String,
        /// The index asked for.
        index: u64,
        /// Entries held.
        len: u64,
    },
    /// A value whose type the variable does not hold.
    #[error("{path}: holds {expected}, not {got}")]
    TypeMismatch {
        /// The path.
        path: String,
        /// What the variable holds.
        expected: String,
        /// What was given.
        got: String,
    },
    /// A stored header or entry that fails its checks.
    #[error("{key}: damaged ({reason})")]
    Corrupt {
        /// The storage key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A stored value with its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A whole number.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Text.
    Text(String),
    /// Any JSON document.
    Json(Json),
    /// An n-dimensional array.
    Array(Array),
    /// The entries of a list variable, in order.
    List(Vec<Value>),
}

impl Value {
    /// The type as a header records it: `int`, `float`, `text`, `json`, or
    /// `array <dtype> <shape>`.
    fn type_name(&self) -> String {
        match self {
            Self::Int(_) => "int".into(),
            Self::Float(_) => "float".into(),
            Self::Text(_) => "text".into(),
            Self::Json(_) => "json".into(),
            Self::Array(a) => format!("array {} {:?}", a.dtype(), a.shape()),
            Self::List(_) => "list".into(),
        }
    }

    /// The payload of one stored entry.
    fn encode(&self) -> Vec<u8> {
        match self {
            Self::Int(v) => v.to_string().into_bytes(),
            Self::Float(v) => serde_json::to_vec(&float_json(*v)).unwrap_or_default(),
            Self::Text(v) => v.as_bytes().to_vec(),
            Self::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
            Self::Array(a) => a.le_bytes().to_vec(),
            Self::List(_) => Vec::new(),
        }
    }
}

/// JSON has no NaN or infinities: they are written as strings.
fn float_json(v: f64) -> Json {
    serde_json::Number::from_f64(v).map_or_else(|| Json::String(v.to_string()), Json::Number)
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeKind {
    /// A container of nodes.
    Group,
    /// A value or list of values.
    Variable,
}

/// A variable's header.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Header {
    /// The type of its values (see [`Value::type_name`]).
    r#type: String,
    /// Whether it is a list (`append`) rather than a single value.
    list: bool,
    /// Entries stored.
    len: u64,
    #[serde(default)]
    attrs: Map<String, Json>,
}

/// A group's header.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct GroupHeader {
    #[serde(default)]
    attrs: Map<String, Json>,
}

/// The tree over a storage backend.
pub struct Tree<'a> {
    storage: &'a dyn Storage,
}

/// One node of the tree, with the attributes buffered for it while it does
/// not exist.
pub struct Node<'a> {
    tree: &'a Tree<'a>,
    path: String,
    buffered: Map<String, Json>,
}

impl<'a> Tree<'a> {
    /// The tree kept in `storage`.
    #[must_use]
    pub fn new(storage: &'a dyn Storage) -> Self {
        Self { storage }
    }

    /// The node at `path` (which need not exist yet).
    ///
    /// # Errors
    /// [`TreeError::BadPath`].
    pub fn node(&'a self, path: &str) -> Result<Node<'a>, TreeError> {
        Ok(Node {
            tree: self,
            path: check_path(path)?,
            buffered: Map::new(),
        })
    }

    /// What is at `path`, if anything.
    ///
    /// # Errors
    /// A bad path, or storage failure.
    pub fn kind(&self, path: &str) -> Result<Option<NodeKind>, TreeError> {
        let path = check_path(path)?;
        self.kind_of(&path)
    }

    fn kind_of(&self, path: &str) -> Result<Option<NodeKind>, TreeError> {
        if self
            .storage
            .size(&header_key(path, VARIABLE_HEADER)?)?
            .is_some()
        {
            Ok(Some(NodeKind::Variable))
        } else if path.is_empty()
            || self
                .storage
                .size(&header_key(path, GROUP_HEADER)?)?
                .is_some()
        {
            Ok(Some(NodeKind::Group))
        } else {
            Ok(None)
        }
    }

    /// The nodes directly inside the group at `path` (`""`: the top).
    ///
    /// # Errors
    /// Not a group, or storage failure.
    pub fn children(&self, path: &str) -> Result<Vec<(String, NodeKind)>, TreeError> {
        let path = check_path_or_top(path)?;
        match self.kind_of(&path)? {
            Some(NodeKind::Group) => {}
            Some(NodeKind::Variable) => return Err(wrong_kind(&path, NodeKind::Variable)),
            None => return Err(TreeError::NotFound { path }),
        }
        let prefix = if path.is_empty() {
            format!("{TREE_PREFIX}/")
        } else {
            format!("{TREE_PREFIX}/{path}/")
        };
        let mut found = Vec::new();
        for (key, _) in self.storage.list(&prefix)? {
            let rest = &key.as_str()[prefix.len()..];
            let kind = match rest.split_once('/') {
                Some((name, VARIABLE_HEADER)) => Some((name, NodeKind::Variable)),
                Some((name, GROUP_HEADER)) => Some((name, NodeKind::Group)),
                _ => None,
            };
            if let Some((name, kind)) = kind {
                found.push((name.to_string(), kind));
            }
        }
        found.sort();
        Ok(found)
    }

    /// Reads every header and entry of the tree; returns the damaged ones
    /// as `(storage key, reason)`.
    ///
    /// # Errors
    /// Storage failure.
    pub fn check(&self) -> Result<Vec<(String, String)>, TreeError> {
        let mut damage = Vec::new();
        let mut groups = vec![String::new()];
        while let Some(group) = groups.pop() {
            let children = match self.children(&group) {
                Ok(c) => c,
                Err(TreeError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            for (name, kind) in children {
                let path = if group.is_empty() {
                    name
                } else {
                    format!("{group}/{name}")
                };
                if kind == NodeKind::Group {
                    groups.push(path);
                    continue;
                }
                let header = match self.read_header(&path) {
                    Ok(h) => h,
                    Err(TreeError::Corrupt { key, reason }) => {
                        damage.push((key, reason));
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for i in 0..header.len {
                    match self.read_entry(&path, &header, i) {
                        Ok(_) => {}
                        Err(TreeError::Corrupt { key, reason }) => damage.push((key, reason)),
                        // The backend's own checks (a pack's checksum).
                        Err(TreeError::Storage(e @ StorageError::Corrupt { .. })) => {
                            damage.push((entry_key(&path, i)?.to_string(), e.to_string()));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(damage)
    }

    fn read_header(&self, path: &str) -> Result<Header, TreeError> {
        let key = header_key(path, VARIABLE_HEADER)?;
        match self.storage.get(&key)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| TreeError::Corrupt {
                key: key.to_string(),
                reason: e.to_string(),
            }),
            None => match self.kind_of(path)? {
                Some(NodeKind::Group) => Err(wrong_kind(path, NodeKind::Group)),
                _ => Err(TreeError::NotFound { path: path.into() }),
            },
        }
    }

    fn write_header(&self, path: &str, header: &Header) -> Result<(), TreeError> {
        let key = header_key(path, VARIABLE_HEADER)?;
        self.storage
            .put(&key, &serde_json::to_vec(header).unwrap_or_default())?;
        Ok(())
    }

    /// Makes every ancestor of `path` a group; refuses a variable among them.
    fn make_parents(&self, path: &str) -> Result<(), TreeError> {
        let mut at = String::new();
        for segment in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map_or(&[][..], |s| s.1)
        {
            if !at.is_empty() {
                at.push('/');
            }
            at.push_str(segment);
            match self.kind_of(&at)? {
                Some(NodeKind::Group) => {}
                Some(NodeKind::Variable) => return Err(wrong_kind(&at, NodeKind::Variable)),
                None => self.storage.put(
                    &header_key(&at, GROUP_HEADER)?,
                    &serde_json::to_vec(&GroupHeader::default()).unwrap_or_default(),
                )?,
            }
        }
        Ok(())
    }

    fn read_entry(&self, path: &str, header: &Header, index: u64) -> Result<Value, TreeError> {
        let key = entry_key(path, index)?;
        let corrupt = |reason: String| TreeError::Corrupt {
            key: key.to_string(),
            reason,
        };
        let stored = self
            .storage
            .get(&key)?
            .ok_or_else(|| corrupt("entry missing".into()))?;
        let (crc, payload) = stored
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("shorter than its checksum".into()))?;
        if u32::from_le_bytes(*crc) != crc32fast::hash(payload) {
            return Err(corrupt("checksum mismatch".into()));
        }
        decode(&header.r#type, payload).map_err(corrupt)
    }

    fn write_entry(&self, path: &str, index: u64, value: &Value) -> Result<(), TreeError> {
        let payload = value.encode();
        let mut stored = Vec::with_capacity(payload.len() + 4);
        stored.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        stored.extend_from_slice(&payload);
        self.storage.put(&entry_key(path, index)?, &stored)?;
        Ok(())
    }
}

impl Node<'_> {
    /// The node's path.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Sets an attribute: written at once on an existing node, buffered
    /// until the node is created otherwise.
    ///
    /// # Errors
    /// Storage failure.
    pub fn set_attr(&mut self, name: &str, value: Json) -> Result<(), TreeError> {
        let tree = self.tree;
        match tree.kind_of(&self.path)? {
            Some(NodeKind::Variable) => {
                let mut header = tree.read_header(&self.path)?;
                header.attrs.insert(name.into(), value);
                tree.write_header(&self.path, &header)
            }
            Some(NodeKind::Group) => {
                let key = header_key(&self.path, GROUP_HEADER)?;
                let mut header: GroupHeader = match tree.storage.get(&key)? {
                    Some(b) => serde_json::from_slice(&b).map_err(|e| TreeError::Corrupt {
                        key: key.to_string(),
                        reason: e.to_string(),
                    })?,
                    None => GroupHeader::default(),
                };
                header.attrs.insert(name.into(), value);
                tree.storage
                    .put(&key, &serde_json::to_vec(&header).unwrap_or_default())?;
                Ok(())
            }
            None => {
                self.buffered.insert(name.into(), value);
                Ok(())
            }
        }
    }

    /// The node's attributes (buffered ones while it does not exist).
    ///
    /// # Errors
    /// Storage failure or a damaged header.
    pub fn attrs(&self) -> Result<Map<String, Json>, TreeError> {
        let tree = self.tree;
        match tree.kind_of(&self.path)? {
            Some(NodeKind::Variable) => Ok(tree.read_header(&self.path)?.attrs),
            Some(NodeKind::Group) => {
                let key = header_key(&self.path, GROUP_HEADER)?;
                Ok(match tree.storage.get(&key)? {
                    Some(b) => {
                        serde_json::from_slice::<GroupHeader>(&b)
                            .map_err(|e| TreeError::Corrupt {
                                key: key.to_string(),
                                reason: e.to_string(),
                            })?
                            .attrs
                    }
                    None => Map::new(),
                })
            }
            None => Ok(self.buffered.clone()),
        }
    }

    /// Makes the node a group (its parents too), if it is not one yet.
    ///
    /// # Errors
    /// It, or a parent, is a variable; storage failure.
    pub fn make_group(&mut self) -> Result<(), TreeError> {
        let tree = self.tree;
        match tree.kind_of(&self.path)? {
            Some(NodeKind::Group) => Ok(()),
            Some(NodeKind::Variable) => Err(wrong_kind(&self.path, NodeKind::Variable)),
            None => {
                tree.make_parents(&self.path)?;
                let header = GroupHeader {
                    attrs: std::mem::take(&mut self.buffered),
                };
                tree.storage.put(
                    &header_key(&self.path, GROUP_HEADER)?,
                    &serde_json::to_vec(&header).unwrap_or_default(),
                )?;
                Ok(())
            }
        }
    }

    /// Stores `value` as the variable's one value, replacing what it held.
    ///
    /// # Errors
    /// The node is a group; storage failure.
    pub fn write(&mut self, value: &Value) -> Result<(), TreeError> {
        let attrs = self.prepare_variable()?;
        self.tree.write_entry(&self.path, 0, value)?;
        let header = Header {
            r#type: value.type_name(),
            list: false,
            len: 1,
            attrs,
        };
        self.tree.write_header(&self.path, &header)
    }

    /// Replaces entry `index` of a list variable.
    ///
    /// # Errors
    /// Not found, out of range, another type; storage failure.
    pub fn write_at(&mut self, index: u64, value: &Value) -> Result<(), TreeError> {
        let header = self.header_holding(index)?;
        self.check_type(&header, value)?;
        self.tree.write_entry(&self.path, index, value)
    }

    /// Appends `value` to a list variable, creating it if needed. The entry
    /// is written before the header counts it, so a crash never leaves a
    /// counted entry missing.
    ///
    /// # Errors
    /// A group, a single-value variable, another type; storage failure.
    pub fn append(&mut self, value: &Value) -> Result<u64, TreeError> {
        let tree = self.tree;
        let mut header = match tree.kind_of(&self.path)? {
            Some(_) => tree.read_header(&self.path)?,
            None => Header {
                r#type: value.type_name(),
                list: true,
                len: 0,
                attrs: self.prepare_variable()?,
            },
        };
        if !header.list {
            return Err(TreeError::TypeMismatch {
                path: self.path.clone(),
                expected: format!("one {}", header.r#type),
                got: "an appended entry".into(),
            });
        }
        self.check_type(&header, value)?;
        let index = header.len;
        tree.write_entry(&self.path, index, value)?;
        header.len += 1;
        tree.write_header(&self.path, &header)?;
        Ok(index)
    }

    /// The variable's value: its one value, or a [`Value::List`] of entries.
    ///
    /// # Errors
    /// Not found, a group, damage; storage failure.
    pub fn read(&self) -> Result<Value, TreeError> {
        let header = self.tree.read_header(&self.path)?;
        if !header.list {
            return self.tree.read_entry(&self.path, &header, 0);
        }
        (0..header.len)
            .map(|i| self.tree.read_entry(&self.path, &header, i))
            .collect::<Result<_, _>>()
            .map(Value::List)
    }

    /// Entry `index` of a list variable (index 0 of a single value).
    ///
    /// # Errors
    /// Not found, out of range, damage; storage failure.
    pub fn read_at(&self, index: u64) -> Result<Value, TreeError> {
        let header = self.header_holding(index)?;
        self.tree.read_entry(&self.path, &header, index)
    }

    /// Entries held (1 for a single value).
    ///
    /// # Errors
    /// Not found, a group; storage failure.
    pub fn entries(&self) -> Result<u64, TreeError> {
        Ok(self.tree.read_header(&self.path)?.len)
    }

    /// The variable's header, if it holds entry `index`.
    fn header_holding(&self, index: u64) -> Result<Header, TreeError> {
        let header = self.tree.read_header(&self.path)?;
        if index >= header.len {
            return Err(TreeError::OutOfRange {
                path: self.path.clone(),
                index,
                len: header.len,
            });
        }
        Ok(header)
    }

    /// Creates the parents and takes the buffered attributes for a new
    /// variable; keeps an existing variable's attributes.
    fn prepare_variable(&mut self) -> Result<Map<String, Json>, TreeError> {
        match self.tree.kind_of(&self.path)? {
            Some(NodeKind::Group) => Err(wrong_kind(&self.path, NodeKind::Group)),
            Some(NodeKind::Variable) => Ok(self.tree.read_header(&self.path)?.attrs),
            None => {
                self.tree.make_parents(&self.path)?;
                Ok(std::mem::take(&mut self.buffered))
            }
        }
    }

    fn check_type(&self, header: &Header, value: &Value) -> Result<(), TreeError> {
        let got = value.type_name();
        if got == header.r#type && !matches!(value, Value::List(_)) {
            Ok(())
        } else {
            Err(TreeError::TypeMismatch {
                path: self.path.clone(),
                expected: header.r#type.clone(),
                got,
            })
        }
    }
}

/// Decodes one entry's payload of type `ty`.
fn decode(ty: &str, payload: &[u8]) -> Result<Value, String> {
    let text = || std::str::from_utf8(payload).map_err(|e| e.to_string());
    match ty {
        "int" => text()?.parse().map(Value::Int).map_err(|e| e.to_string()),
        "float" => match serde_json::from_slice::<Json>(payload).map_err(|e| e.to_string())? {
            Json::Number(n) => n
                .as_f64()
                .map(Value::Float)
                .ok_or_else(|| "not a float".into()),
            Json::String(s) => s.parse().map(Value::Float).map_err(|e| e.to_string()),
            _ => Err("not a float".into()),
        },
        "text" => text().map(|t| Value::Text(t.to_string())),
        "json" => serde_json::from_slice(payload)
            .map(Value::Json)
            .map_err(|e| e.to_string()),
        _ => {
            let array = parse_array_type(ty).ok_or_else(|| format!("unknown type '{ty}'"))?;
            let (dtype, shape) = array;
            Array::from_le_bytes(dtype, shape, payload.to_vec())
                .map(Value::Array)
                .map_err(|e| e.to_string())
        }
    }
}

/// `array <dtype> [d0, d1, …]` → the element type and shape.
fn parse_array_type(ty: &str) -> Option<(DType, Vec<usize>)> {
    let rest = ty.strip_prefix("array ")?;
    let (dtype, shape) = rest.split_once(' ')?;
    let dtype: DType = dtype.parse().ok()?;
    let shape: Vec<usize> = serde_json::from_str(shape).ok()?;
    Some((dtype, shape))
}

fn wrong_kind(path: &str, is: NodeKind) -> TreeError {
    let (is, wanted) = match is {
        NodeKind::Group => ("group", "variable"),
        NodeKind::Variable => ("variable", "group"),
    };
    TreeError::WrongKind {
        path: path.into(),
        is,
        wanted,
    }
}

/// A node path: segments of letters, digits, `_`, `-` and `.`, none empty,
/// none starting with `.` (headers) or all digits (entries).
fn check_path(path: &str) -> Result<String, TreeError> {
    let bad = |reason| TreeError::BadPath {
        path: path.into(),
        reason,
    };
    if path.is_empty() {
        return Err(bad("empty"));
    }
    for segment in path.split('/') {
        if segment.is_empty() {
            return Err(bad("empty segment"));
        }
        if segment.starts_with('.') {
            return Err(bad("a segment starts with '.'"));
        }
        if segment.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a segment is all digits"));
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(bad("only letters, digits, '_', '-' and '.' are allowed"));
        }
    }
    Ok(path.to_string())
}

fn check_path_or_top(path: &str) -> Result<String, TreeError> {
    if path.is_empty() {
        Ok(String::new())
    } else {
        check_path(path)
    }
}

fn header_key(path: &str, header: &str) -> Result<StoreKey, TreeError> {
    let key = if path.is_empty() {
        format!("{TREE_PREFIX}/{header}")
    } else {
        format!("{TREE_PREFIX}/{path}/{header}")
    };
    StoreKey::new(key).map_err(|e| TreeError::Storage(e.into()))
}

fn entry_key(path: &str, index: u64) -> Result<StoreKey, TreeError> {
    StoreKey::new(format!("{TREE_PREFIX}/{path}/{index}")).map_err(|e| TreeError::Storage(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use ndarray::array;

    /// The behaviour every backend must give the tree.
    fn suite(storage: &dyn Storage) {
        let tree = Tree::new(storage);
        // Missing paths are typed NotFound.
        assert!(matches!(
            tree.node("nothing/here").unwrap().read(),
            Err(TreeError::NotFound { .. })
        ));
        // Every value type reads back with its type.
        let values = [
            Value::Int(-7),
            Value::Float(2.5),
            Value::Text("gauge 12".into()),
            Value::Json(serde_json::json!({"a": [1, 2, {"b": null}]})),
            Value::Array(Array::new(&array![[1u16, 2, 3], [4, 5, 6]].into_dyn())),
        ];
        for (i, v) in values.iter().enumerate() {
            let mut n = tree.node(&format!("types/v{i}")).unwrap();
            n.write(v).unwrap();
            assert_eq!(&n.read().unwrap(), v);
        }
        // Overwrite, also with another type.
        let mut n = tree.node("types/v0").unwrap();
        n.write(&Value::Text("now text".into())).unwrap();
        assert_eq!(n.read().unwrap(), Value::Text("now text".into()));
        // Groups list their children; a group is not a variable.
        assert_eq!(tree.kind("types").unwrap(), Some(NodeKind::Group));
        assert_eq!(tree.children("types").unwrap().len(), 5);
        assert_eq!(
            tree.children("").unwrap(),
            vec![("types".to_string(), NodeKind::Group)]
        );
        assert!(matches!(
            tree.node("types").unwrap().write(&Value::Int(1)),
            Err(TreeError::WrongKind { .. })
        ));
        assert!(matches!(
            tree.node("types/v1/below").unwrap().write(&Value::Int(1)),
            Err(TreeError::WrongKind { .. })
        ));
        // Lists: append, read, replace an entry, stay one type.
        let mut list = tree.node("log/events").unwrap();
        // Metadata before the variable exists is buffered, then written.
        list.set_attr("units", serde_json::json!("s")).unwrap();
        assert!(tree.kind("log/events").unwrap().is_none());
        for v in [756, 757, 758] {
            list.append(&Value::Int(v)).unwrap();
        }
        assert_eq!(
            tree.node("log/events").unwrap().attrs().unwrap()["units"],
            "s"
        );
        list.write_at(1, &Value::Int(1)).unwrap();
        assert_eq!(
            list.read().unwrap(),
            Value::List(vec![Value::Int(756), Value::Int(1), Value::Int(758)])
        );
        assert_eq!(list.entries().unwrap(), 3);
        assert_eq!(list.read_at(2).unwrap(), Value::Int(758));
        assert!(matches!(
            list.read_at(3),
            Err(TreeError::OutOfRange { len: 3, .. })
        ));
        assert!(matches!(
            list.append(&Value::Text("x".into())),
            Err(TreeError::TypeMismatch { .. })
        ));
        // Arrays append along a first axis of entries, shape kept.
        let mut frames = tree.node("log/frames").unwrap();
        for k in 0..2u8 {
            frames
                .append(&Value::Array(Array::new(&array![k, k + 1].into_dyn())))
                .unwrap();
        }
        assert!(matches!(
            frames.append(&Value::Array(Array::new(&array![1u8, 2, 3].into_dyn()))),
            Err(TreeError::TypeMismatch { .. })
        ));
        // A damaged entry is detected, never misread.
        let key = entry_key("log/events", 0).unwrap();
        let mut bytes = storage.get(&key).unwrap().unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        storage.put(&key, &bytes).unwrap();
        assert!(matches!(list.read_at(0), Err(TreeError::Corrupt { .. })));
    }

    #[test]
    fn the_suite_holds_on_every_backend() {
        suite(&MemoryStorage::new());
        let dir = tempfile::tempdir().unwrap();
        suite(&crate::storage::FolderStorage::create(dir.path().join("s")).unwrap());
        suite(&crate::storage::PackedStorage::create(dir.path().join("p")).unwrap());
        suite(&crate::storage::Hdf5Storage::create(dir.path().join("h.h5")).unwrap());
    }

    #[test]
    fn paths_that_name_no_node_are_refused() {
        for bad in [
            "", "a//b", "../x", "a/../b", ".hidden", "a/12", "a b", "/a", "a/",
        ] {
            assert!(
                matches!(check_path(bad), Err(TreeError::BadPath { .. })),
                "{bad}"
            );
        }
        assert!(check_path("history/ingests_v2.x-1").is_ok());
    }

    #[test]
    fn float_specials_round_trip() {
        let storage = MemoryStorage::new();
        let tree = Tree::new(&storage);
        let mut n = tree.node("f").unwrap();
        for v in [f64::INFINITY, -0.5, 1e300] {
            n.write(&Value::Float(v)).unwrap();
            assert_eq!(n.read().unwrap(), Value::Float(v));
        }
        n.write(&Value::Float(f64::NAN)).unwrap();
        assert!(matches!(n.read().unwrap(), Value::Float(v) if v.is_nan()));
        let a = Array::new(&array![[1.5f32, 2.0], [3.0, 4.0]].into_dyn());
        n.write(&Value::Array(a.clone())).unwrap();
        let Value::Array(back) = n.read().unwrap() else {
            panic!()
        };
        assert_eq!(back, a);
        assert_eq!(back.to_nd::<f32>().unwrap()[[1, 0]], 3.0);
        assert!(back.to_nd::<f64>().is_none());
    }
}
