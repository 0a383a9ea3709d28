fn main() {
    std::process::exit(psdock::run::main(std::env::args_os()));
}
