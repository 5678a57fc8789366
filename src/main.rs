fn main() {
    std::process::exit(vnet::run());
}
