use std::io::Error as IoError;
use std::path::PathBuf;

use super::*;

fn policy_granting(path: &Path) -> Policy {
    Policy::from_toml(&format!(
        "[files]\nallow = [\"{}\"]\n",
        path.to_str().expect("a UTF-8 path")
    ))
    .expect("a valid policy")
}

/// Issue 14, item 7: a denied symlink is named as given; where it leads
/// stays unsaid.
#[test]
fn a_denial_never_says_where_a_symlink_leads() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let granted = dir.path().join("granted");
    std::fs::write(&granted, "token").expect("write");
    let target = dir.path().join("secret-target-7c1f");
    std::fs::write(&target, "secret").expect("write");
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).expect("a symlink");
    let policy = policy_granting(&granted);
    match read(&policy, link.to_str().expect("UTF-8")) {
        Err(CapError::Denied(detail)) => {
            assert!(detail.contains("link"), "{detail}");
            assert!(detail.contains("is not granted"), "{detail}");
            assert!(!detail.contains("secret-target-7c1f"), "{detail}");
            assert!(!detail.contains("resolves"), "{detail}");
        }
        other => panic!("expected a denial, got {other:?}"),
    }
    assert_eq!(read(&policy, granted.to_str().unwrap()).unwrap(), b"token");
}

#[cfg(target_os = "linux")]
#[test]
fn the_opened_file_check_is_skipped_only_without_proc() {
    let real = Path::new("/granted/token");
    let mounted = || true;
    let absent = || false;
    assert!(judge_opened(Ok(real.to_path_buf()), mounted, real, "`t`").is_ok());
    assert!(matches!(
        judge_opened(Ok(PathBuf::from("/etc/shadow")), mounted, real, "`t`"),
        Err(CapError::Denied(_))
    ));
    for kind in [
        std::io::ErrorKind::PermissionDenied,
        std::io::ErrorKind::NotFound,
        std::io::ErrorKind::InvalidInput,
    ] {
        match judge_opened(Err(IoError::from(kind)), mounted, real, "`t`") {
            Err(CapError::Failed(detail)) => assert!(detail.contains("cannot be checked")),
            other => panic!("{kind:?} with /proc mounted: expected a failure, got {other:?}"),
        }
        assert!(judge_opened(Err(IoError::from(kind)), absent, real, "`t`").is_ok());
    }
}
