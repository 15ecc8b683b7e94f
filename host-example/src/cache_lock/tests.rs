use super::*;

fn cache() -> (tempfile::TempDir, TokenCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = TokenCache::new(dir.path().join("tokens"));
    (dir, cache)
}

#[test]
fn one_holder_per_entry_and_the_next_one_gets_it_after_release() {
    let (_dir, cache) = cache();
    let held = acquire(&cache, "a", Duration::ZERO).unwrap().expect("free");
    assert!(
        acquire(&cache, "a", Duration::from_millis(20))
            .unwrap()
            .is_none(),
        "a second holder waits, then gives up"
    );
    let other = acquire(&cache, "b", Duration::ZERO).unwrap();
    assert!(other.is_some(), "entries lock independently");
    drop(held);
    assert!(acquire(&cache, "a", Duration::ZERO).unwrap().is_some());
}

#[test]
fn a_waiter_gets_the_lock_as_soon_as_it_is_released() {
    let (_dir, cache) = cache();
    let held = acquire(&cache, "a", Duration::ZERO).unwrap().unwrap();
    let waiter = {
        let cache = cache.clone();
        std::thread::spawn(move || acquire(&cache, "a", Duration::from_secs(600)).unwrap())
    };
    drop(held);
    assert!(waiter.join().unwrap().is_some());
}

#[cfg(unix)]
#[test]
fn the_lock_file_is_private_empty_and_never_a_symlink() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, cache) = cache();
    drop(acquire(&cache, "a", Duration::ZERO).unwrap());
    let path = lock_path(&cache, "a");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 0);

    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"").unwrap();
    let linked = lock_path(&cache, "b");
    std::os::unix::fs::symlink(&target, &linked).unwrap();
    assert!(acquire(&cache, "b", Duration::ZERO).is_err());

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = acquire(&cache, "a", Duration::ZERO).unwrap_err();
    assert!(error.to_string().contains("other users"), "{error}");
}
