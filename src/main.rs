fn main() -> std::process::ExitCode {
    semdock::cli::run()
}
