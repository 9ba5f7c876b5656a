//! The ssoprobe binary: everything happens in [`ssoprobe::app`].

fn main() -> std::process::ExitCode {
    ssoprobe::app::main()
}
