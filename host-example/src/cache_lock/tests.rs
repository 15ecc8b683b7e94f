use super::*;

fn folder() -> (tempfile::TempDir, PrivateDir) {
    let dir = tempfile::tempdir().unwrap();
    let private = PrivateDir::open(&dir.path().join("tokens")).unwrap();
    (dir, private)
}

#[test]
fn one_holder_per_entry_and_the_next_one_gets_it_after_release() {
    let (_dir, folder) = folder();
    let held = acquire(&folder, "a.lock", Duration::ZERO)
        .unwrap()
        .expect("free");
    assert!(
        acquire(&folder, "a.lock", Duration::from_millis(20))
            .unwrap()
            .is_none(),
        "a second holder waits, then gives up"
    );
    let other = acquire(&folder, "b.lock", Duration::ZERO).unwrap();
    assert!(other.is_some(), "entries lock independently");
    drop(held);
    assert!(
        acquire(&folder, "a.lock", Duration::ZERO)
            .unwrap()
            .is_some()
    );
}

#[test]
fn a_waiter_gets_the_lock_once_it_is_released() {
    let (dir, folder) = folder();
    let held = acquire(&folder, "a.lock", Duration::ZERO).unwrap().unwrap();
    let (blocked, seen_blocked) = std::sync::mpsc::channel();
    let waiter = {
        let path = dir.path().join("tokens");
        std::thread::spawn(move || {
            let folder = PrivateDir::open(&path).unwrap();
            // Held by the test thread: a try without waiting fails first.
            let first = acquire(&folder, "a.lock", Duration::ZERO).unwrap();
            blocked.send(first.is_none()).unwrap();
            acquire(&folder, "a.lock", Duration::from_secs(600))
                .unwrap()
                .is_some()
        })
    };
    assert!(seen_blocked.recv().unwrap(), "the lock was free while held");
    // Let the waiter into its polling loop before the release.
    std::thread::sleep(Duration::from_millis(30));
    drop(held);
    assert!(waiter.join().unwrap(), "the waiter gave up");
}

#[test]
fn the_lock_file_is_private_empty_and_never_a_symlink() {
    use std::os::unix::fs::PermissionsExt;

    let (dir, folder) = folder();
    drop(acquire(&folder, "a.lock", Duration::ZERO).unwrap());
    let path = dir.path().join("tokens/a.lock");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(meta.len(), 0);

    let target = dir.path().join("elsewhere");
    std::fs::write(&target, b"").unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("tokens/b.lock")).unwrap();
    let error = acquire(&folder, "b.lock", Duration::ZERO).unwrap_err();
    assert!(error.to_string().contains("symlink"), "{error}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = acquire(&folder, "a.lock", Duration::ZERO).unwrap_err();
    assert!(error.to_string().contains("other users"), "{error}");
}
