//! [`Spare`]: one boxed value parked for reuse, taken and parked with one atomic
//! operation each (no lock). A handle keeps its idle snapshot buffer and an idle reader
//! in these, so that a read does not pay for a mutex four times.

use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

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
