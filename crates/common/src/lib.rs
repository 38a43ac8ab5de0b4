//! Plumbing shared by the callback, the probe and the scenario runner, each piece written once:
//! the Patroni REST client (`patroni`) and the PostgreSQL helpers every part needs (`pg`: a
//! connect bounded as a whole, text rows from a simple query, an error's text).

pub mod patroni;
pub mod pg;
