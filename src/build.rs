//! Records the target triple the binary is built for, so `tinynode
//! --version` can say which build it is (a static ARM binary copied to a
//! router should say so).

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=TINYNODE_TARGET={target}");
    println!("cargo:rerun-if-changed=src/build.rs");
}
