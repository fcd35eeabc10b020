//! Command-line interface. (Placeholder from the `protocol` branch: the real dispatcher is owned elsewhere;
//! this only declares the offline tools so they compile and can be tested.)

pub mod offline;
