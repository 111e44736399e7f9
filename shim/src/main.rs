//! `containerd-shim-worldfit-v1`: the containerd shim for runtime
//! `io.containerd.worldfit.v1`. When a container starts it selects the
//! build of the container's image index that this host runs (worldfit's
//! selection against the embedded wasmtime 48's host profile), confirms it,
//! and runs it in wasmtime 48 with the container's args, env and stdio.
//! README.md, "For shim authors", says how to build and register it.

mod bundle;
mod instance;
mod run;
mod serve;

fn main() {
    containerd_shimkit::sandbox::cli::shim_main::<instance::WorldfitInstance>(
        "worldfit",
        containerd_shimkit::shim_version!(),
        None,
    );
}
