use super::*;

fn message(result: Result<String, Error>) -> String {
    result.expect_err("the read must fail").to_string()
}

#[test]
fn reads_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "auth: {}\n").unwrap();
    assert_eq!(read_text(&path).unwrap(), "auth: {}\n");
}

#[test]
fn a_file_at_the_cap_is_read_and_one_byte_over_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    std::fs::write(&path, "a".repeat(MAX_LOCAL_FILE_BYTES as usize)).unwrap();
    assert_eq!(read_text(&path).unwrap().len() as u64, MAX_LOCAL_FILE_BYTES);
    std::fs::write(&path, "a".repeat(MAX_LOCAL_FILE_BYTES as usize + 1)).unwrap();
    assert_eq!(
        message(read_text(&path)),
        "it is larger than the 1 MiB cap for this file"
    );
}

#[test]
fn a_small_cap_is_named_in_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, "0123456789").unwrap();
    assert_eq!(
        message(read_text_capped(&path, 4)),
        "it is larger than the 4 bytes cap for this file"
    );
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        message(read_text(dir.path())),
        "it is a directory, not a regular file"
    );
}

#[test]
fn binary_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bin");
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    assert_eq!(message(read_text(&path)), "it is not valid UTF-8 text");
}

#[test]
fn devices_are_refused_without_reading() {
    assert_eq!(
        message(read_text(Path::new("/dev/zero"))),
        "it is a character device, not a regular file"
    );
}

#[test]
fn a_fifo_without_a_writer_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fifo");
    crate::private_dir::attacks::mkfifo(&path);
    assert_eq!(
        message(read_text(&path)),
        "it is a FIFO (named pipe), not a regular file"
    );
}

#[test]
fn a_missing_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let error = read_text(&dir.path().join("missing")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
}
