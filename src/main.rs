fn main() -> std::process::ExitCode {
    spectask::cli::main()
}
