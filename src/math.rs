//! The five functions of the C maths library the bridge calls (the metrics' histograms and
//! their quantiles use `exp`, `log`, `log1p`, `log2` and `pow`), defined here from the `libm`
//! crate (a Rust port of musl's) so that the binary does not load the shared libm at all.
//!
//! Why: with glibc, loading libm.so costs a fresh bridge about half a MiB of resident memory
//! (its symbol tables, and the code of the resolvers that pick a variant of each function for
//! the CPU, which run at start-up) for a few KiB of code. These definitions come before the
//! system library at link time, and the linker then drops libm.so (`--as-needed`). The static
//! glibc libm cannot be linked instead: its resolvers need a symbol private to glibc's loader.

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod c {
    #[no_mangle]
    extern "C" fn exp(x: f64) -> f64 {
        libm::exp(x)
    }

    #[no_mangle]
    extern "C" fn log(x: f64) -> f64 {
        libm::log(x)
    }

    #[no_mangle]
    extern "C" fn log1p(x: f64) -> f64 {
        libm::log1p(x)
    }

    #[no_mangle]
    extern "C" fn log2(x: f64) -> f64 {
        libm::log2(x)
    }

    #[no_mangle]
    extern "C" fn pow(x: f64, y: f64) -> f64 {
        libm::pow(x, y)
    }
}
