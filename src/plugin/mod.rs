//! Orchestration: one function per CNI command.
pub fn main() -> i32 {
    0
}
