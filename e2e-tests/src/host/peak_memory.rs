//! Guest linear memories that remember how large they grew.
//!
//! wasmtime-provider keeps its `Store` private, so the size of a guest's memory cannot be
//! read after a call. A wasm memory never shrinks, so the largest size any memory of the
//! engine reached is the guest's peak; this creator records it as memories grow. Host
//! memories rule out wasmtime's copy-on-write initialisation (and with it, deadlines:
//! see `PolicyModule::compile`), so a tracking host is for measuring memory only.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use wasmtime_provider::wasmtime::{LinearMemory, MemoryCreator, MemoryType};

/// Linear memories that are at most 4 GiB, the whole address space of wasm32.
const WASM32_SPACE: usize = 1 << 32;

/// Creates the engine's linear memories and keeps the largest size any of them reached.
#[derive(Default)]
pub(crate) struct PeakMemory {
    peak: Arc<AtomicUsize>,
}

impl PeakMemory {
    pub(crate) fn peak_bytes(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }
}

// SAFETY: every memory is a fresh zeroed anonymous mapping that never moves, with at
// least the reservation and guard wasmtime asks for, as `MemoryCreator` requires.
unsafe impl MemoryCreator for PeakMemory {
    fn new_memory(
        &self,
        _ty: MemoryType,
        minimum: usize,
        maximum: Option<usize>,
        reserved_size_in_bytes: Option<usize>,
        guard_size_in_bytes: usize,
    ) -> Result<Box<dyn LinearMemory>, String> {
        let capacity = reserved_size_in_bytes
            .or(maximum)
            .unwrap_or(WASM32_SPACE)
            .max(minimum);
        let mapped = capacity + guard_size_in_bytes;
        // SAFETY: a new private anonymous mapping, inaccessible until `grow_to` opens it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve {mapped} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut memory = TrackedMemory {
            base: NonNull::new(base.cast()).ok_or("mmap returned null")?,
            size: 0,
            capacity,
            mapped,
            peak: self.peak.clone(),
        };
        memory.grow_to(minimum).map_err(|e| e.to_string())?;
        Ok(Box::new(memory))
    }
}

struct TrackedMemory {
    base: NonNull<u8>,
    /// Accessible bytes from `base`.
    size: usize,
    /// Bytes that may become accessible without moving.
    capacity: usize,
    /// The whole mapping: capacity and guard.
    mapped: usize,
    peak: Arc<AtomicUsize>,
}

// SAFETY: the mapping is owned by this value alone; wasmtime serialises access to it.
unsafe impl Send for TrackedMemory {}
// SAFETY: as above; `&self` methods only read the bookkeeping fields.
unsafe impl Sync for TrackedMemory {}

// SAFETY: `as_ptr` is stable for the memory's life and `byte_size` bytes are read-write.
unsafe impl LinearMemory for TrackedMemory {
    fn byte_size(&self) -> usize {
        self.size
    }

    fn byte_capacity(&self) -> usize {
        self.capacity
    }

    fn grow_to(&mut self, new_size: usize) -> wasmtime_provider::wasmtime::Result<()> {
        if new_size > self.capacity {
            wasmtime_provider::wasmtime::bail!(
                "cannot grow a linear memory to {new_size} bytes: {} reserved",
                self.capacity
            );
        }
        if new_size > self.size {
            // SAFETY: the range lies inside this memory's own reservation; wasm page
            // sizes are multiples of the system page size.
            let opened = unsafe {
                libc::mprotect(
                    self.base.as_ptr().add(self.size).cast(),
                    new_size - self.size,
                    libc::PROT_READ | libc::PROT_WRITE,
                )
            };
            if opened != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            self.size = new_size;
            self.peak.fetch_max(new_size, Ordering::Relaxed);
        }
        Ok(())
    }

    fn as_ptr(&self) -> *mut u8 {
        self.base.as_ptr()
    }
}

impl Drop for TrackedMemory {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new_memory`, which nothing uses now.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.mapped) };
    }
}
