fn main() {
    std::process::exit(psdock::exec::main(std::env::args_os()));
}
