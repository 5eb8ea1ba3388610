//! The five functions of the C maths library the bridge calls (the metrics' histograms and
//! their quantiles use `exp`, `log`, `log1p`, `log2` and `pow`), defined here from the `libm`
//! crate (a Rust port of musl's) so that the binary does not load the shared libm at all.
//!
//! Why: with glibc, loading libm.so costs a fresh bridge about half a MiB of resident memory
//! (its symbol tables, and the code of the resolvers that pick a variant of each function for
//! the CPU, which run at start-up) for a few KiB of code. These definitions come before the
//! system library at link time, and the linker then drops libm.so (`--as-needed`). The static
//! glibc libm cannot be linked instead: its resolvers need a symbol private to glibc's loader.

/// `extern "C" fn name(args) -> f64` calling `libm::name`, exported under the C name.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
macro_rules! from_libm {
    ($($name:ident($($arg:ident),+);)+) => {
        $(
            #[no_mangle]
            extern "C" fn $name($($arg: f64),+) -> f64 {
                libm::$name($($arg),+)
            }
        )+
    };
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
from_libm! {
    exp(x);
    log(x);
    log1p(x);
    log2(x);
    pow(x, y);
}
