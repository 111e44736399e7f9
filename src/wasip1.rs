//! The functions of `wasi_snapshot_preview1`, with their core signatures.
//!
//! WASI 0.1 is frozen, so its function set is a fixed table (from the
//! `wasi_snapshot_preview1.witx` definitions, lowered to core types). Every
//! function returns an `errno` (`i32`) except `proc_exit`.

use crate::component::{CoreSig, CoreValType};

/// `(name, params)`; `i` is `i32`, `I` is `i64`.
const FUNCTIONS: &[(&str, &str)] = &[
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_close", "i"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_fdstat_set_rights", "iII"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("poll_oneoff", "iiii"),
    ("proc_exit", "i"),
    ("proc_raise", "i"),
    ("sched_yield", ""),
    ("random_get", "ii"),
    ("sock_accept", "iii"),
    ("sock_recv", "iiiiii"),
    ("sock_send", "iiiii"),
    ("sock_shutdown", "ii"),
];

/// The core signature of a `wasi_snapshot_preview1` function, if it exists.
pub fn signature(name: &str) -> Option<CoreSig> {
    let (_, params) = FUNCTIONS.iter().find(|(n, _)| *n == name)?;
    let params = params
        .chars()
        .map(|c| {
            if c == 'I' {
                CoreValType::I64
            } else {
                CoreValType::I32
            }
        })
        .collect();
    let results = if name == "proc_exit" {
        vec![]
    } else {
        vec![CoreValType::I32]
    };
    Some(CoreSig { params, results })
}

/// Every function name, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|(n, _)| *n)
}
