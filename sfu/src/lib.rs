//! Selective forwarding unit. The media path arrives with issue 5; this crate exists so the workspace has its final shape.
