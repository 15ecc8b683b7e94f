//! The generated bindings of the `federation` world (private to the crate).

wasmtime::component::bindgen!({
    world: "federation",
    path: "../wit",
});
