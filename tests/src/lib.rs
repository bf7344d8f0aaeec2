//! Test harness: starts real servers and real redis-server instances.
