//! The function cache on every backend: the same checks on memory, folder
//! and packed storage, and persistence across a restart on the last two.

use super::*;
use crate::storage::{Backend, MemoryStorage};
use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use std::cell::Cell;
use std::sync::Arc;

fn grid(v: f32) -> ArrayD<f32> {
    ArrayD::from_elem(IxDyn(&[3, 4]), v)
}

/// Every check, on caches from `make`.
fn run_all(make: &dyn Fn() -> FunctionCache) {
    repeated_calls_are_answered_from_storage(&make());
    argument_order_does_not_matter_and_values_do(&make());
    clearing_by_age_function_and_arguments(&make());
    damage_is_a_miss_never_a_wrong_value(&make());
    the_oldest_go_first_beyond_the_limit(make());
}

fn repeated_calls_are_answered_from_storage(cache: &FunctionCache) {
    let computed = Cell::new(0);
    let compute = || -> Result<ArrayD<f32>, String> {
        computed.set(computed.get() + 1);
        Ok(grid(2.5))
    };
    let args = json!({"x": 1, "store": "abc"});
    let first = cache.call("square", &args, compute).unwrap();
    assert!(!first.hit && first.problem.is_none());
    let second = cache.call("square", &args, compute).unwrap();
    assert!(second.hit);
    assert_eq!(second.value, grid(2.5));
    assert_eq!(computed.get(), 1);
    // A failing computation is not kept.
    let failed = cache.call("fails", &args, || Err::<f64, _>("no"));
    assert_eq!(failed.unwrap_err(), "no");
    assert!(cache.get::<f64>("fails", &args).unwrap().is_none());
}

fn argument_order_does_not_matter_and_values_do(cache: &FunctionCache) {
    cache
        .put("f", &json!({"a": 1, "b": [1, 2]}), &1.0f64)
        .unwrap();
    assert_eq!(
        cache
            .get::<f64>("f", &json!({"b": [1, 2], "a": 1}))
            .unwrap(),
        Some(1.0)
    );
    assert_eq!(
        cache
            .get::<f64>("f", &json!({"b": [2, 1], "a": 1}))
            .unwrap(),
        None
    );
    assert_eq!(
        cache
            .get::<f64>("g", &json!({"b": [1, 2], "a": 1}))
            .unwrap(),
        None
    );
    assert!(matches!(
        cache.put("../x", &json!({}), &1.0f64),
        Err(CacheError::BadName { .. })
    ));
}

fn clearing_by_age_function_and_arguments(cache: &FunctionCache) {
    let day = 86_400.0;
    let now = now();
    cache
        .put_created(
            "old",
            &json!({"store": "s1", "level": 3}),
            &1.0f64,
            &Json::Null,
            now - 10.0 * day,
        )
        .unwrap();
    cache
        .put_created(
            "old",
            &json!({"store": "s2", "level": 3}),
            &2.0f64,
            &Json::Null,
            now - 2.0 * day,
        )
        .unwrap();
    cache
        .put_created(
            "new",
            &json!({"store": "s1", "level": 4}),
            &3.0f64,
            &Json::Null,
            now,
        )
        .unwrap();
    let older = |days: f64| ClearFilter {
        older_than: Some(Duration::from_secs_f64(days * day)),
        ..ClearFilter::default()
    };
    assert_eq!(cache.clear(&older(5.0)).unwrap(), 1);
    assert!(
        cache
            .get::<f64>("old", &json!({"store": "s1", "level": 3}))
            .unwrap()
            .is_none()
    );
    assert_eq!(
        cache
            .get::<f64>("old", &json!({"store": "s2", "level": 3}))
            .unwrap(),
        Some(2.0)
    );
    let by_args = ClearFilter {
        args: Some(json!({"store": "s1"})),
        ..ClearFilter::default()
    };
    assert_eq!(cache.clear(&by_args).unwrap(), 1);
    assert!(
        cache
            .get::<f64>("new", &json!({"store": "s1", "level": 4}))
            .unwrap()
            .is_none()
    );
    let by_function = ClearFilter {
        function: Some("old".into()),
        ..ClearFilter::default()
    };
    assert_eq!(cache.clear(&by_function).unwrap(), 1);
    assert!(cache.entries().unwrap().iter().all(|e| e.function != "old"));
}

fn damage_is_a_miss_never_a_wrong_value(cache: &FunctionCache) {
    let args = json!({"n": 7});
    cache.put("d", &args, &grid(1.0)).unwrap();
    let (_, bin) = keys("d", &args).unwrap();
    let mut bytes = cache.storage().get(&bin).unwrap().unwrap();
    bytes[5] ^= 0x10;
    cache.storage().put(&bin, &bytes).unwrap();
    assert!(matches!(
        cache.get::<ArrayD<f32>>("d", &args),
        Err(CacheError::Damaged { .. })
    ));
    let again = cache
        .call("d", &args, || Ok::<_, String>(grid(1.0)))
        .unwrap();
    assert!(!again.hit && again.problem.is_some());
    assert_eq!(again.value, grid(1.0));
    assert!(
        cache
            .call("d", &args, || Ok::<_, String>(grid(9.0)))
            .unwrap()
            .hit
    );
    // An entry of another type is a miss too.
    let wrong = cache.call("d", &args, || Ok::<_, String>(4.0f64)).unwrap();
    assert!(!wrong.hit && wrong.problem.is_some());
    assert_eq!(wrong.value, 4.0);
}

fn the_oldest_go_first_beyond_the_limit(cache: FunctionCache) {
    cache.clear(&ClearFilter::default()).unwrap();
    let one = cache.entries().unwrap().len();
    assert_eq!(one, 0);
    let cache = cache.with_limit(3 * 1024);
    for i in 0..6 {
        cache
            .put_created(
                "big",
                &json!({"i": i}),
                &vec![7u8; 900],
                &Json::Null,
                1000.0 + f64::from(i),
            )
            .unwrap();
    }
    let left: Vec<i64> = cache
        .entries()
        .unwrap()
        .iter()
        .map(|e| e.args["i"].as_i64().unwrap())
        .collect();
    assert!(!left.is_empty() && left.len() < 6, "{left:?}");
    assert_eq!(*left.last().unwrap(), 5, "the newest stays: {left:?}");
    let total: u64 = cache.entries().unwrap().iter().map(|e| e.bytes).sum();
    assert!(total <= 3 * 1024);
}

#[test]
fn memory() {
    run_all(&|| FunctionCache::new(Arc::new(MemoryStorage::new())));
}

fn on_disk(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicU32::new(0);
    run_all(&|| {
        let i = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        FunctionCache::new(
            crate::storage::create(&dir.path().join(format!("c{i}")), backend).unwrap(),
        )
    });
    // After a restart, the result is still there.
    let path = dir.path().join("restart");
    let cache = FunctionCache::new(crate::storage::create(&path, backend).unwrap());
    cache.put("f", &json!({"x": 1}), &grid(3.0)).unwrap();
    cache.storage().sync().unwrap();
    drop(cache);
    let cache = FunctionCache::new(crate::storage::open(&path).unwrap());
    let got = cache
        .call("f", &json!({"x": 1}), || {
            Err::<ArrayD<f32>, _>("recomputed")
        })
        .unwrap();
    assert!(got.hit);
    assert_eq!(got.value, grid(3.0));
}

#[test]
fn folder() {
    on_disk(Backend::Folder);
}

#[test]
fn packed() {
    on_disk(Backend::Packed);
}

#[test]
fn canonical_json_sorts_members_at_every_depth() {
    let a = json!({"b": {"y": 1, "x": [3, {"q": 1, "p": 2}]}, "a": "t"});
    assert_eq!(
        canonical(&a),
        r#"{"a":"t","b":{"x":[3,{"p":2,"q":1}],"y":1}}"#
    );
}
