use crate::util::*;

#[test]
fn runs_a_command_and_passes_its_exit_code_through() {
    let sb = Sandbox::new();
    let out = sb.run(["sh", "-c", "echo hello from $(hostname); exit 7"]);
    assert_eq!(stdout(&out), "hello from psdock\n");
    assert_eq!(code(&out), 7);
    sb.assert_clean();
}

#[test]
fn a_multi_letter_single_dash_typo_is_an_error_naming_it() {
    let sb = Sandbox::new();
    let out = sb
        .bare()
        .args(["-imagee", "x", "-r"])
        .arg(sb.rootfs())
        .arg("true")
        .output()
        .unwrap();
    assert_eq!(code(&out), 125);
    assert_eq!(stderr(&out), "psdock: unknown flag -imagee\n");
    sb.assert_clean();
}
