fn main() {
    // First, before it enters any container (psdock::seal).
    if let Err(e) = psdock::seal::reexec_sealed_with(std::env::args_os()) {
        eprintln!("psdock-exec: {e}");
        std::process::exit(125);
    }
    std::process::exit(psdock::exec::main(std::env::args_os()));
}
