fn main() {
    std::process::exit(psdock::ls::main(std::env::args_os()));
}
