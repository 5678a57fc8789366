#[global_allocator]
static ALLOCATOR: vnet::arena::Global = vnet::arena::Global::new();

fn main() {
    std::process::exit(vnet::run());
}
