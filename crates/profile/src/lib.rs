//! Named settings profiles for the lab (`profiles/*.ini`): the vocabulary of settings a
//! profile may change (`keys`) and a profile read, checked and completed from `default`
//! (`profile`).

pub mod keys;
pub mod profile;
