use super::*;

#[test]
fn replaces_every_value_longest_first() {
    let values = vec![
        b"hunter2-secret".to_vec(),
        b"hunter2".to_vec(),
        b"1".to_vec(),
        Vec::new(),
    ];
    assert_eq!(
        redact_values(
            b"+ curl -u me:hunter2-secret x; retry hunter2 1 time".to_vec(),
            &values
        ),
        b"+ curl -u me:[redacted] x; retry [redacted] 1 time".to_vec()
    );
    assert_eq!(redact_values(b"nothing".to_vec(), &[]), b"nothing".to_vec());
    assert_eq!(
        redact_values(b"\xff\xfeabcd\xff".to_vec(), &[b"abcd".to_vec()]),
        b"\xff\xfe[redacted]\xff".to_vec()
    );
}
