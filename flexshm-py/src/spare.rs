//! Cells that park one value for reuse.
//!
//! - [`Spare`]: one boxed value, taken and parked with one atomic operation each (no
//!   lock), by any thread, attached to the interpreter or not. A handle keeps an idle
//!   reader here for the threads that wait without the GIL.
//! - [`Attached`]: one value, taken and parked with plain loads and stores by threads
//!   attached to the interpreter. A read takes its snapshot buffer and the handle's idle
//!   reader from these: an atomic read-modify-write costs about 5 ns here, and a
//!   `read()` used to do four of them.
//! - [`Reusable`] and [`Parked`]: the last `Record` and `Field` objects a handle handed
//!   out wait in a `Parked` cell, and one is given a new state and handed out again when
//!   nothing else holds it, instead of freeing it and allocating another (about 25 ns for
//!   a pyo3 object). CPython's
//!   `enumerate` and `zip` reuse their result tuples the same way: an object whose only
//!   owned reference is ours is not held by anyone. (A method may still be running on it
//!   through a borrowed reference: see `Parked::reuse`.)

use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::prelude::*;
use pyo3::pyclass::boolean_struct::True;
use pyo3::PyClass;

// `Attached`, `Parked` and the reference-count check of `Parked::reuse` are sound
// because attached threads take turns (the GIL). A free-threaded interpreter runs them
// at the same time, so the extension refuses to build for one.
#[cfg(Py_GIL_DISABLED)]
compile_error!(
    "flexshm-py relies on the GIL (its `Attached` and `Parked` cells) and does not support free-threaded Python builds"
);

/// At most one value, reachable only by a thread attached to the interpreter.
pub struct Attached<T>(UnsafeCell<Option<T>>);

impl<T> Attached<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Attached(UnsafeCell::new(None))
    }

    /// Takes the parked value, leaving the cell empty.
    pub fn take(&self, _py: Python<'_>) -> Option<T> {
        // SAFETY: see `unsafe impl Sync`: `_py` proves this thread holds the GIL, so no
        // other thread is inside `take` or `put` of this cell, and neither lends a
        // reference into the cell beyond its own body (which calls no Python code, so
        // the GIL cannot pass to another thread during it).
        unsafe { (*self.0.get()).take() }
    }

    /// Parks `value` if the cell is empty; gives it back if another value is parked.
    pub fn put(&self, _py: Python<'_>, value: T) -> Result<(), T> {
        // SAFETY: as in `take`.
        let slot = unsafe { &mut *self.0.get() };
        if slot.is_some() {
            return Err(value);
        }
        *slot = Some(value);
        Ok(())
    }

    /// Parks `value`, returning what was parked before (for the caller to drop, outside
    /// the cell: dropping a Python object may run Python code).
    pub fn replace(&self, _py: Python<'_>, value: T) -> Option<T> {
        // SAFETY: as in `take`.
        unsafe { (*self.0.get()).replace(value) }
    }
}

impl<T> Default for Attached<T> {
    fn default() -> Self {
        Attached::new()
    }
}

// SAFETY: the cell owns its value, which may move to another thread with it (`T: Send`).
unsafe impl<T: Send> Send for Attached<T> {}
// SAFETY: shared access goes through `take`, `put` and `replace` only, which need a
// `Python` token: the calling thread holds the GIL, so two threads never access the cell
// at once (a free-threaded build is refused above), and a thread only moves the value
// in or out, never keeping a reference into the cell.
unsafe impl<T: Send> Sync for Attached<T> {}

/// At most one parked `Box<T>`.
pub struct Spare<T>(AtomicPtr<T>);

impl<T> Spare<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Spare(AtomicPtr::new(ptr::null_mut()))
    }

    /// Takes the parked value, leaving the cell empty.
    pub fn take(&self) -> Option<Box<T>> {
        // Acquire pairs with the Release of the `put` that parked the pointer: the
        // value's contents, written before it was parked, are visible here. Release:
        // a `put` that finds the cell emptied by this swap also sees what this thread
        // did before it (see `Shared::put_spare`).
        let p = self.0.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: a non-null pointer in the cell came from `Box::into_raw` in `put`, and
        // the swap above took it out, so this is its only owner.
        (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
    }

    /// Parks `value` if the cell is empty; gives it back if another value is parked.
    pub fn put(&self, value: Box<T>) -> Result<(), Box<T>> {
        let p = Box::into_raw(value);
        // Release pairs with the Acquire of the `take` that will take the pointer;
        // Acquire pairs with the Release of the `take` that emptied the cell.
        match self
            .0
            .compare_exchange(ptr::null_mut(), p, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(()),
            // SAFETY: the exchange failed, so `p` was not stored: we still own it.
            Err(_) => Err(unsafe { Box::from_raw(p) }),
        }
    }
}

impl<T> Default for Spare<T> {
    fn default() -> Self {
        Spare::new()
    }
}

impl<T> Drop for Spare<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

// SAFETY: the cell owns at most one `Box<T>` and hands it to exactly one thread at a
// time (the swap and the exchange are atomic), like a `Mutex<Option<Box<T>>>`.
unsafe impl<T: Send> Send for Spare<T> {}
// SAFETY: as above: shared access only moves the box in and out atomically, never lends
// `&T` to two threads.
unsafe impl<T: Send> Sync for Spare<T> {}

/// The state of a Python object that [`Parked::reuse`] may replace.
pub struct Reusable<T>(UnsafeCell<T>);

impl<T> Reusable<T> {
    /// A fresh object's state.
    pub fn new(state: T) -> Self {
        Reusable(UnsafeCell::new(state))
    }

    /// The current state.
    pub fn get(&self) -> &T {
        // SAFETY: see `unsafe impl Sync`: the state is replaced only while no reference
        // to the object, hence no borrow of its state, exists anywhere.
        unsafe { &*self.0.get() }
    }

    /// The state, for the object's own `Drop`.
    pub fn get_mut(&mut self) -> &mut T {
        self.0.get_mut()
    }

    /// Replaces the state, returning the old one.
    ///
    /// # Safety
    ///
    /// The caller holds the only reference to the object that owns this state (so no
    /// borrow from [`get`](Self::get) is alive, on any thread).
    unsafe fn replace(&self, state: T) -> T {
        // SAFETY: the caller's contract: nobody else can look at the state now.
        unsafe { std::mem::replace(&mut *self.0.get(), state) }
    }
}

// SAFETY: the state is read through `get` by any thread holding a reference to the
// owning object, and written only by `replace`, whose caller holds the object's only
// reference: no reader exists at that moment, on this thread or another.
unsafe impl<T: Send + Sync> Sync for Reusable<T> {}

/// A Python class whose state [`Parked::reuse`] may replace.
pub trait Reuse: PyClass<Frozen = True> + Sync {
    /// Everything a reuse replaces.
    type State;
    /// Where the object keeps it.
    fn state_cell(&self) -> &Reusable<Self::State>;
}

/// Up to two Python objects kept for reuse. [`reuse`](Self::reuse) hands one out with a
/// new state when nothing but this cell holds it. Two, so that in a loop of
/// `rec = shm.read()`, where `rec` still holds the previous record while the next read
/// runs, the one before it is free.
pub struct Parked<T>(UnsafeCell<ParkedObjects<T>>);

struct ParkedObjects<T> {
    objects: [Option<Py<T>>; 2],
    /// Which object `park` replaces when both are taken.
    next: usize,
}

impl<T: Reuse> Parked<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Parked(UnsafeCell::new(ParkedObjects {
            objects: [None, None],
            next: 0,
        }))
    }

    /// A parked object with `state` as its new state, if one is held by nothing but
    /// this cell; returns it and its old state (for the caller to release after this
    /// returns: dropping Python objects may run Python code). Otherwise gives `state`
    /// back, and the caller makes a new object (and parks it).
    pub fn reuse<'py>(
        &self,
        py: Python<'py>,
        state: T::State,
    ) -> Result<(Bound<'py, T>, T::State), T::State> {
        // SAFETY: as in `Attached::take`; the borrow ends before anything that could
        // run Python code.
        let parked = unsafe { &*self.0.get() };
        for obj in parked.objects.iter().flatten() {
            // SAFETY: `obj` is a live object. `py` proves this thread holds the GIL, so
            // no other thread runs while we look, and a reference cannot appear from
            // nowhere: a count of 1 means the cell's is the only owned one. CPython may
            // still be running a method of the object through a borrowed reference (a
            // list's repr does), so every method of a `Reuse` class that can run Python
            // code either holds a reference of its own or copies its state first.
            if unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) } == 1 {
                let obj = obj.bind(py).clone();
                // SAFETY: the only references are the cell's and ours (above), and
                // nothing between the check and the replacement runs Python code.
                let old = unsafe { obj.get().state_cell().replace(state) };
                return Ok((obj, old));
            }
        }
        Err(state)
    }

    /// Releases the parked objects (when the handle closes).
    pub fn clear(&self, _py: Python<'_>) {
        let old = {
            // SAFETY: as in `reuse`; the objects are released after the borrow ends.
            let parked = unsafe { &mut *self.0.get() };
            parked.objects.each_mut().map(Option::take)
        };
        drop(old);
    }

    /// Parks `obj` for [`reuse`](Self::reuse), in place of an older object.
    pub fn park(&self, obj: &Bound<'_, T>) {
        let new = obj.clone().unbind();
        let old = {
            // SAFETY: as in `reuse`; dropping the replaced object happens after the
            // borrow ends.
            let parked = unsafe { &mut *self.0.get() };
            let k = parked
                .objects
                .iter()
                .position(Option::is_none)
                .unwrap_or(parked.next);
            parked.next = (k + 1) % parked.objects.len();
            parked.objects[k].replace(new)
        };
        drop(old);
    }
}

impl<T: Reuse> Default for Parked<T> {
    fn default() -> Self {
        Parked::new()
    }
}

// SAFETY: the cell owns its objects (`Py<T>` is `Send`).
unsafe impl<T> Send for Parked<T> {}
// SAFETY: as for `Attached`: every access goes through `reuse` and `park`, which need a
// `Python` token (the GIL), and neither keeps a reference into the cell.
unsafe impl<T> Sync for Parked<T> {}

#[cfg(test)]
mod tests {
    use super::Spare;
    use std::sync::Arc;

    #[test]
    fn holds_one_value_at_a_time() {
        let s = Spare::new();
        assert!(s.take().is_none());
        assert!(s.put(Box::new(1)).is_ok());
        assert_eq!(*s.put(Box::new(2)).unwrap_err(), 2);
        assert_eq!(*s.take().unwrap(), 1);
        assert!(s.take().is_none());
    }

    #[test]
    fn threads_never_share_or_lose_a_value() {
        // Each thread moves the one parked counter in and out; a value taken by two
        // threads at once, or dropped, would make the final count wrong.
        let s = Arc::new(Spare::new());
        s.put(Box::new(0u64)).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    let mut done = 0;
                    while done < 10_000 {
                        if let Some(mut v) = s.take() {
                            *v += 1;
                            done += 1;
                            s.put(v)
                                .expect("the cell was empty while we held the value");
                        }
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*s.take().unwrap(), 40_000);
    }
}
