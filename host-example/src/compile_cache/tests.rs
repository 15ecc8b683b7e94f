use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::*;
use crate::private_dir::attacks::{Swapper, chmod, give_to_other_user};
use crate::provider::EMBEDDED_COMPONENT;

/// The smallest component: no imports, no exports. It stands for the
/// attacker's machine code: loading it instead of ours is the attack.
const PLANTED_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

fn is_ours(engine: &Engine, component: &Component) -> bool {
    component.component_type().exports(engine).count() > 0
}

fn planted_artifact(engine: &Engine) -> Vec<u8> {
    Component::new(engine, PLANTED_COMPONENT)
        .unwrap()
        .serialize()
        .unwrap()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_artifact_is_written_reused_and_replaced_when_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("compiled");
    let engine = Engine::default();
    let id = ArtifactId::of(&engine, EMBEDDED_COMPONENT);
    assert!(is_ours(
        &engine,
        &load_or_compile(&engine, EMBEDDED_COMPONENT, &dir).unwrap()
    ));
    let path = dir.join(&id.name);
    let written = std::fs::read(&path).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&dir.join(KEY_FILE)), 0o600);
    let cache = CompileCache::open(&dir).unwrap();
    assert!(is_ours(
        &engine,
        &cache.load(&engine, &id).unwrap().unwrap()
    ));

    std::fs::write(&path, &written[..written.len() / 2]).unwrap();
    assert!(
        cache
            .load(&engine, &id)
            .unwrap_err()
            .contains("not authenticated")
    );
    load_or_compile(&engine, EMBEDDED_COMPONENT, &dir).unwrap();
    let replaced = std::fs::read(&path).unwrap();
    assert_eq!(
        replaced.len(),
        written.len(),
        "replaced by a whole artifact"
    );
    assert!(cache.load(&engine, &id).unwrap().is_some());
    std::fs::write(&path, b"short").unwrap();
    assert!(cache.load(&engine, &id).unwrap_err().contains("truncated"));
}

#[test]
fn an_artifact_for_another_component_is_not_authentic_under_this_name() {
    let tmp = tempfile::tempdir().unwrap();
    let engine = Engine::default();
    let cache = CompileCache::open(tmp.path()).unwrap();
    let other = ArtifactId::of(&engine, PLANTED_COMPONENT);
    cache.store(&other, &planted_artifact(&engine)).unwrap();
    let ours = ArtifactId::of(&engine, EMBEDDED_COMPONENT);
    std::fs::rename(tmp.path().join(&other.name), tmp.path().join(&ours.name)).unwrap();
    assert!(
        cache
            .load(&engine, &ours)
            .unwrap_err()
            .contains("not authenticated")
    );
}

#[test]
fn a_recomputed_plain_checksum_does_not_get_an_artifact_loaded() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("compiled");
    let engine = Engine::default();
    let id = ArtifactId::of(&engine, EMBEDDED_COMPONENT);
    let cache = CompileCache::open(&dir).unwrap();
    let planted = planted_artifact(&engine);
    for checksum in [
        Sha256::digest(&planted).to_vec(),
        Sha256::digest([id.header.as_slice(), &planted].concat()).to_vec(),
    ] {
        std::fs::write(dir.join(&id.name), [checksum, planted.clone()].concat()).unwrap();
        chmod(&dir.join(&id.name), 0o600);
        assert!(
            cache
                .load(&engine, &id)
                .unwrap_err()
                .contains("not authenticated")
        );
        let loaded = load_or_compile(&engine, EMBEDDED_COMPONENT, &dir).unwrap();
        assert!(is_ours(&engine, &loaded), "the planted artifact was loaded");
        assert!(
            is_ours(&engine, &cache.load(&engine, &id).unwrap().unwrap()),
            "replaced by an authentic artifact"
        );
    }
}

#[test]
fn the_mac_is_hmac_sha256() {
    // RFC 4231's first case with a 32-byte key (ours are 32 bytes, the
    // RFC's 20): key 0x0b repeated, message "Hi There", expected value from
    // an independent implementation (Python's `hmac` module).
    let cache = CompileCache {
        dir: PrivateDir::open(tempfile::tempdir().unwrap().path()).unwrap(),
        key: [0x0b; KEY_LEN],
    };
    let id = ArtifactId {
        name: String::new(),
        header: b"Hi ".to_vec(),
    };
    assert_eq!(
        hex(&cache.mac(&id, b"There")),
        "198a607eb44bfbc69903a0f1cf2bbdc5ba0aa3f3d9ae3c1c7a3b1696a0b68cf7"
    );
    assert!(equal_in_constant_time(b"same", b"same"));
    assert!(!equal_in_constant_time(b"same", b"sane"));
    assert!(!equal_in_constant_time(b"same", b"sam"));
}

#[test]
fn the_key_is_made_once_and_a_malformed_one_is_replaced() {
    let tmp = tempfile::tempdir().unwrap();
    let first = CompileCache::open(tmp.path()).unwrap().key;
    assert_eq!(CompileCache::open(tmp.path()).unwrap().key, first);
    assert_ne!(first, [0; KEY_LEN]);
    std::fs::write(tmp.path().join(KEY_FILE), b"short").unwrap();
    let replaced = CompileCache::open(tmp.path()).unwrap().key;
    assert_ne!(replaced, first);
    assert_eq!(std::fs::read(tmp.path().join(KEY_FILE)).unwrap(), replaced);
}

/// The attack of the review: `XDG_CACHE_HOME` in a sticky shared folder, the
/// attacker's `anthropic-wif/` there (0777), and its own `compiled/` (with
/// its own key and an artifact authenticated by it) swapped with the
/// victim's in a loop.
#[test]
fn a_compiled_folder_swapped_by_another_user_is_never_loaded_from() {
    let tmp = tempfile::tempdir().unwrap();
    let shared = tmp.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    chmod(&shared, 0o1777);
    let theirs = shared.join("anthropic-wif");
    let victims: PathBuf = theirs.join("compiled");
    let planted = theirs.join("planted");
    std::fs::create_dir_all(&victims).unwrap();
    chmod(&victims, 0o700);
    let engine = Engine::default();
    let id = ArtifactId::of(&engine, EMBEDDED_COMPONENT);
    {
        let attackers = CompileCache::open(&planted).unwrap();
        attackers.store(&id, &planted_artifact(&engine)).unwrap();
        assert!(!is_ours(
            &engine,
            &attackers.load(&engine, &id).unwrap().unwrap()
        ));
    }
    for path in [&planted, &planted.join(KEY_FILE), &planted.join(&id.name)] {
        give_to_other_user(path);
    }
    chmod(&theirs, 0o777);
    give_to_other_user(&theirs);
    let swapper = Swapper::start(victims.clone(), planted);
    for _ in 0..1_000 {
        match CompileCache::open(&victims) {
            Ok(cache) => {
                if let Ok(Some(component)) = cache.load(&engine, &id) {
                    assert!(
                        is_ours(&engine, &component),
                        "the planted artifact was loaded"
                    );
                }
            }
            Err(problem) => {
                let problem = problem.to_string();
                assert!(
                    problem.contains("another user") || problem.contains("writable by other users"),
                    "{problem}"
                );
            }
        }
    }
    let loaded = load_or_compile(&engine, EMBEDDED_COMPONENT, &victims).unwrap();
    assert!(is_ours(&engine, &loaded));
    swapper.stop();
}
