//! The only layer that talks to the kernel.
