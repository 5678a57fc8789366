#![cfg_attr(test, allow(clippy::unwrap_used))]

mod arena;

#[global_allocator]
static ALLOCATOR: arena::Global = arena::Global::new();

fn main() {
    std::process::exit(vnet::run());
}
