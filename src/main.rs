fn main() -> std::process::ExitCode {
    rewardkit::cli::main()
}
