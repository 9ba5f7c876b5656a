//! The ssoprobe binary: everything happens in [`ssoprobe::cmd`].

fn main() -> std::process::ExitCode {
    ssoprobe::cmd::main()
}
