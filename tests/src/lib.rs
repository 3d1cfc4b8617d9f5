//! Shared helpers for synprobe's integration tests.
//!
//! - [`lab`]: builds a throwaway chain of network namespaces
//!   (`client -- r1 -- … -- server`) to run synprobe against real Linux
//!   stacks, firewalls and routes. Needs root; guard tests with
//!   [`lab::root_or_skip`].

pub mod lab;
