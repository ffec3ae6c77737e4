//! Configuration, pure and free of I/O: log-opts and plugin settings become
//! validated values, templates and label sets.

pub mod defaults;
pub mod hints;
pub mod labels;
pub mod options;
pub mod settings;
pub mod table;
pub mod template;
pub mod time;
pub mod units;
