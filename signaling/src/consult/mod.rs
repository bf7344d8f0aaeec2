//! The consultation domain: records and their lifecycle.
pub mod lifecycle;
pub mod model;
pub mod patient;
pub mod referral;
pub mod rights;
