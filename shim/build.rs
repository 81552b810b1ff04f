//! The shim's release link (scripts/link-in-order) reads
//! `layout/hot-functions.txt`, which cargo would not know of: a change to that
//! list must relink the binary as a change to its code does.
fn main() {
    println!("cargo:rerun-if-changed=layout/hot-functions.txt");
}
