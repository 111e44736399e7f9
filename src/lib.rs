//! worldfit
pub mod component;
pub mod features;
pub mod host;
pub mod platform;
pub mod types;
pub mod verdict;
pub mod wasip1;
pub mod wit_name;
