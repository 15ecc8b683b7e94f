use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::attacks::{Swapper, chmod, give_to_other_user, is_root, mkfifo};
use super::*;

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn problem(result: Result<impl std::fmt::Debug, PrivateDirError>) -> String {
    result.unwrap_err().to_string()
}

#[test]
fn files_are_written_private_and_read_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::open(&tmp.path().join("cache/sub")).unwrap();
    dir.write_atomically("file", b"data").unwrap();
    assert_eq!(dir.read("file", 4).unwrap().unwrap(), b"data");
    assert_eq!(dir.read("absent", 4).unwrap(), None);
    assert_eq!(mode_of(&dir.path().join("file")), 0o600);
    assert_eq!(mode_of(dir.path()), 0o700);
    assert_eq!(mode_of(&tmp.path().join("cache")), 0o700);
    dir.write_atomically("file", b"again").unwrap();
    assert_eq!(dir.read("file", 5).unwrap().unwrap(), b"again");
}

#[test]
fn a_file_over_the_bound_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::open(tmp.path()).unwrap();
    dir.write_atomically("file", b"12345").unwrap();
    assert!(problem(dir.read("file", 4)).contains("is larger than 4 bytes"));
}

#[test]
fn symlinks_open_files_and_special_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::open(tmp.path()).unwrap();
    dir.write_atomically("file", b"data").unwrap();
    let file = tmp.path().join("file");
    std::os::unix::fs::symlink(&file, tmp.path().join("link")).unwrap();
    assert!(problem(dir.read("link", 64)).contains("is a symlink"));
    chmod(&file, 0o644);
    assert!(problem(dir.read("file", 64)).contains("readable or writable by other users"));
    mkfifo(&tmp.path().join("fifo"));
    assert!(
        problem(dir.read("fifo", 64)).contains("is not a regular file"),
        "refused without waiting for a writer"
    );
    std::fs::create_dir(tmp.path().join("folder")).unwrap();
    assert!(problem(dir.read("folder", 64)).contains("is not a regular file"));
}

#[test]
fn symlinked_or_open_folders_on_the_way_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, tmp.path().join("link")).unwrap();
    assert!(problem(PrivateDir::open(&tmp.path().join("link/cache"))).contains("is a symlink"));
    assert!(problem(PrivateDir::open(&tmp.path().join("link"))).contains("is a symlink"));
    chmod(&real, 0o777);
    assert!(problem(PrivateDir::open(&real.join("cache"))).contains("writable by other users"));
    chmod(&real, 0o770);
    assert!(problem(PrivateDir::open(&real)).contains("writable by other users"));
    assert!(problem(PrivateDir::open(Path::new("relative/cache"))).contains("not an absolute"));
    assert!(problem(PrivateDir::open(&tmp.path().join("a/../b"))).contains("`..`"));
}

#[test]
fn a_sticky_shared_folder_is_accepted_on_the_way_only() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let mine = PrivateDir::open(&shared.join("mine/cache")).unwrap();
    assert_eq!(mine.path(), shared.join("mine/cache"));
    assert!(problem(PrivateDir::open(&shared)).contains("is a shared folder"));
    let refused = problem(cache_root_in(Some(shared.clone())));
    assert!(refused.contains("is a shared folder"), "{refused}");
    assert!(!shared.join("anthropic-wif").exists());
    let root = cache_root_in(Some(shared.join("mine"))).unwrap().unwrap();
    assert_eq!(root.path(), shared.join("mine/anthropic-wif"));
}

#[test]
fn the_rule_for_folders_as_if_another_user_planted_them() {
    let me = 1000;
    let other = 1001;
    let judge =
        |uid, mode, place, below_shared| judge_folder(Seen { uid, mode }, me, place, below_shared);
    use Place::{Ancestor, Base, Own};
    assert_eq!(judge(0, 0o755, Ancestor, false), Ok(Verdict::Safe));
    assert_eq!(judge(me, 0o700, Own, false), Ok(Verdict::Safe));
    assert_eq!(judge(0, 0o1777, Ancestor, false), Ok(Verdict::Shared));
    assert_eq!(judge(me, 0o700, Own, true), Ok(Verdict::Safe));
    assert!(
        judge(other, 0o755, Ancestor, false)
            .unwrap_err()
            .contains("another user")
    );
    assert!(
        judge(other, 0o700, Own, true)
            .unwrap_err()
            .contains("shared folder")
    );
    assert!(
        judge(0, 0o755, Ancestor, true)
            .unwrap_err()
            .contains("shared folder")
    );
    assert!(
        judge(0, 0o700, Own, false)
            .unwrap_err()
            .contains("another user")
    );
    assert_eq!(judge(0, 0o755, Base, false), Ok(Verdict::Safe));
    assert!(
        judge(me, 0o1777, Base, false)
            .unwrap_err()
            .contains("shared folder")
    );
    assert!(
        judge(me, 0o1777, Own, false)
            .unwrap_err()
            .contains("shared folder")
    );
    assert!(
        judge(me, 0o775, Ancestor, false)
            .unwrap_err()
            .contains("writable by other")
    );
    assert!(
        judge(me, 0o757, Own, false)
            .unwrap_err()
            .contains("writable by other")
    );
}

#[test]
fn folders_and_files_of_another_user_are_refused() {
    // As root (CI) the planted folders and files really belong to `nobody`;
    // otherwise the rule for them is covered above and the user's own
    // folder open to others stands in.
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let planted = shared.join("anthropic-wif");
    std::fs::create_dir(&planted).unwrap();
    give_to_other_user(&planted);
    chmod(&planted, if is_root() { 0o755 } else { 0o777 });
    let refused = problem(PrivateDir::open(&planted.join("compiled")));
    let expected = if is_root() {
        "belongs to another user"
    } else {
        "writable by other users"
    };
    assert!(refused.contains(expected), "{refused}");
    assert!(
        !planted.join("compiled").exists(),
        "nothing made in a planted folder"
    );
    if is_root() {
        let base = tmp.path().join("theirs");
        std::fs::create_dir(&base).unwrap();
        give_to_other_user(&base);
        assert!(problem(cache_root_in(Some(base.clone()))).contains("belongs to another user"));
        let dir = PrivateDir::open(&tmp.path().join("mine")).unwrap();
        dir.write_atomically("file", b"data").unwrap();
        let file = tmp.path().join("mine/file");
        give_to_other_user(&file);
        assert_eq!(std::fs::metadata(&file).unwrap().uid(), attacks::OTHER_UID);
        assert!(problem(dir.read("file", 64)).contains("belongs to another user"));
    }
}

#[test]
fn the_cache_base_comes_from_absolute_variables() {
    let env = |xdg: &'static str, home: &'static str| {
        move |name: &str| {
            let value = if name == "XDG_CACHE_HOME" { xdg } else { home };
            Some(std::ffi::OsString::from(value))
        }
    };
    assert_eq!(
        cache_base(env("/x", "/h")).unwrap(),
        Some(PathBuf::from("/x"))
    );
    assert_eq!(
        cache_base(env("rel", "/h")).unwrap(),
        Some(PathBuf::from("/h/.cache"))
    );
    assert_eq!(cache_base(env("", "")).unwrap(), None);
    assert!(problem(cache_base(env("", "home"))).contains("HOME is not an absolute path"));
}

#[test]
fn a_file_swapped_for_a_symlink_is_never_read_through_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::open(&tmp.path().join("cache")).unwrap();
    dir.write_atomically("entry", b"good").unwrap();
    let elsewhere = PrivateDir::open(&tmp.path().join("elsewhere")).unwrap();
    elsewhere.write_atomically("planted", b"evil").unwrap();
    let link = tmp.path().join("cache/link");
    std::os::unix::fs::symlink(tmp.path().join("elsewhere/planted"), &link).unwrap();
    let swapper = Swapper::start(tmp.path().join("cache/entry"), link);
    for _ in 0..2_000 {
        match dir.read("entry", 64) {
            Ok(bytes) => assert_eq!(bytes.as_deref(), Some(&b"good"[..])),
            Err(e) => assert!(e.to_string().contains("is a symlink"), "{e}"),
        }
    }
    swapper.stop();
}

#[test]
fn a_folder_swapped_for_a_symlink_is_never_entered() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("base/cache");
    PrivateDir::open(&path)
        .unwrap()
        .write_atomically("entry", b"good")
        .unwrap();
    PrivateDir::open(&tmp.path().join("elsewhere"))
        .unwrap()
        .write_atomically("entry", b"evil")
        .unwrap();
    let link = tmp.path().join("base/link");
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &link).unwrap();
    let swapper = Swapper::start(path.clone(), link);
    for _ in 0..2_000 {
        match PrivateDir::open(&path).and_then(|dir| dir.read("entry", 64)) {
            Ok(bytes) => assert_eq!(bytes.as_deref(), Some(&b"good"[..])),
            // The refusal names what was there when it was looked at again,
            // which the swapper may have changed by then.
            Err(e) => assert!(
                ["is a symlink", "is not a folder"]
                    .iter()
                    .any(|problem| e.to_string().contains(problem)),
                "{e}"
            ),
        }
    }
    swapper.stop();
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_failed_write_leaves_no_temporary_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = PrivateDir::open(tmp.path()).unwrap();
    std::fs::create_dir_all(tmp.path().join("entry/in-the-way")).unwrap();
    assert!(dir.write_atomically("entry", b"data").is_err());
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
    assert!(dir.create_new("key", b"one").unwrap());
    assert!(!dir.create_new("key", b"two").unwrap());
    assert_eq!(dir.read("key", 8).unwrap().unwrap(), b"one");
    assert_eq!(leftovers(tmp.path()), Vec::<String>::new());
}
