use std::process::Command;

use super::*;

#[test]
fn quotes_in_single_quotes() {
    assert_eq!(quote("sk-ant-abc"), "'sk-ant-abc'");
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a'b"), "'a'\\''b'");
    assert_eq!(quote("'"), "''\\'''");
}

/// What a real `sh` makes of `printf %s <quoted>`: each text comes back
/// exactly, and nothing in it runs.
#[test]
fn a_shell_reads_back_exactly_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        "sk-ant-oat01-Ab_9~+/.x==",
        "x'; touch INJECTED; echo '",
        "'$(touch INJECTED)'",
        "`touch INJECTED`",
        "$HOME ${PATH} \\ \\' \" *",
        "line\nbreak; touch INJECTED",
        "''''",
        "é ✓ \t tab",
    ];
    for text in texts {
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", quote(text)))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(output.status.success(), "{text:?}");
        assert_eq!(String::from_utf8(output.stdout).unwrap(), text);
        let eval = Command::new("sh")
            .arg("-c")
            .arg("eval \"$LINE\"; printf %s \"$V\"")
            .env("LINE", format!("V={}", quote(text)))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(eval.status.success(), "{text:?}");
        assert_eq!(String::from_utf8(eval.stdout).unwrap(), text);
    }
    assert!(!dir.path().join("INJECTED").exists());
}
