//! The sections of each man page that clap does not know: exit status, files,
//! environment, see also. Hand-written roff; README.md says the same at length.

const STATE: &str = r#".SH FILES
.TP
\fI/run/psdock/ID.json\fR
The state entry of each container psdock runs: psdock writes it, \%psdock\-ls
lists it, \%psdock\-exec finds the container by it. Mode 0600 in a 0700
directory. \fBPSDOCK_STATE_DIR\fR moves it.
"#;

const STATE_ENV: &str = r#".TP
\fBPSDOCK_STATE_DIR\fR
The directory of the state entries instead of \fI/run/psdock\fR; psdock,
\%psdock\-ls and \%psdock\-exec must agree on it.
"#;

/// psdock's and psdock-exec's: how a command that never ran ends.
const NOT_RUN: &str = r#".TP
\fB126\fR
The command exists but cannot be executed.
.TP
\fB127\fR
The command was not found.
"#;

const PSDOCK: &str = r#".SH EXIT STATUS
The command's own exit status when it exits, or:
.TP
\fB128+\fIN\fR
The command was killed by signal \fIN\fR (137 for SIGKILL, e.g. after
\fB\-kill\-timeout\fR). 130 and 143 also when psdock got SIGINT or SIGTERM and
the command, PID 1 of its namespace, does not handle it: psdock killed it.
.TP
\fB125\fR
psdock's own error: a bad flag or value, not run as root, ROOTFS in use, a
mount that failed. One line on stderr; nothing is left behind.
"#;

const PSDOCK_FILES: &str = r#".TP
\fI/var/lib/psdock/layers\fR
The layer cache: each layer of an OCI image or tarball, unpacked once.
Nothing removes it; delete it to reclaim the space. \fBPSDOCK_CACHE_DIR\fR
moves it.
"#;

const PSDOCK_ENV: &str = r#".TP
\fBPSDOCK_CACHE_DIR\fR
The layer cache instead of \fI/var/lib/psdock/layers\fR.
.TP
\fBNO_COLOR\fR
Set and not empty: no colour in the \fB\-stdout\-prefix\fR.
.TP
\fBSSL_CERT_FILE\fR
The trusted roots of \fBtls://\fR and https web hooks instead of those of
\fI/etc/ssl/certs\fR.
"#;

const EXEC: &str = r#".SH EXIT STATUS
The command's own exit status when it exits, or:
.TP
\fB128+\fIN\fR
The command was killed by signal \fIN\fR.
.TP
\fB125\fR
\%psdock\-exec's own error: a bad flag or value, no ID or COMMAND, an unknown,
stale or broken ID.
"#;

const LS: &str = r#".SH EXIT STATUS
.TP
\fB0\fR
The listing, or the prune, was printed.
.TP
\fB125\fR
A bad flag, or the state directory could not be read.
"#;

/// The sections after OPTIONS of the page of `name`.
pub fn extra(name: &str) -> String {
    let (status, files, env, see_also) = match name {
        "psdock" => (
            PSDOCK,
            PSDOCK_FILES,
            PSDOCK_ENV,
            r"\fB\%psdock\-ls\fR(1), \fB\%psdock\-exec\fR(1), \fBcapabilities\fR(7), \fBseccomp\fR(2)",
        ),
        "psdock-ls" => (LS, "", "", r"\fBpsdock\fR(1), \fB\%psdock\-exec\fR(1)"),
        "psdock-exec" => (
            EXEC,
            "",
            "",
            r"\fBpsdock\fR(1), \fB\%psdock\-ls\fR(1), \fBnsenter\fR(1)",
        ),
        other => unreachable!("no pages for {other}"),
    };
    let status = match name {
        "psdock-ls" => status.to_owned(),
        _ => format!("{status}{NOT_RUN}"),
    };
    format!(
        "{status}{STATE}{files}.SH ENVIRONMENT\n{STATE_ENV}{env}.SH SEE ALSO\n{see_also}\n.PP\n\
         The README, \\fI/usr/share/doc/psdock/README.md.gz\\fR, tells the whole story.\n"
    )
}
