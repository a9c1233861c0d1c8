fn main() -> std::process::ExitCode {
    certwipe::cli::main()
}
