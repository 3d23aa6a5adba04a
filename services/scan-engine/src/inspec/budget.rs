//! Bounds on one control's evaluation: profiles are untrusted input, so an
//! endless loop, runaway recursion, a huge string or a slow regex must end
//! as a clear error on that control, never as a hung or crashed scan.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Per-control limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Evaluation steps (one per node, plus per element in core loops).
    pub fuel: u64,
    /// Nested method, block and describe calls.
    pub max_depth: u32,
    /// Bytes the control may allocate for strings, arrays and hashes (cumulative).
    pub max_bytes: u64,
    /// Wall-clock time.
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel: 20_000_000,
            max_depth: 120,
            max_bytes: 128 << 20,
            time: Duration::from_secs(10),
        }
    }
}

/// Which bound ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// Too many steps.
    Fuel(u64),
    /// Too deep.
    Depth(u32),
    /// Too many bytes.
    Memory(u64),
    /// Too long.
    Time(Duration),
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fuel(n) => write!(
                f,
                "the control ran more than {n} evaluation steps (an endless loop?) and was stopped"
            ),
            Self::Depth(n) => write!(
                f,
                "the control nested calls more than {n} deep (runaway recursion?) and was stopped"
            ),
            Self::Memory(n) => write!(
                f,
                "the control allocated more than {} MiB and was stopped",
                n >> 20
            ),
            Self::Time(t) => write!(f, "the control ran longer than {t:?} and was stopped"),
        }
    }
}

/// The running counters of one control.
#[derive(Debug)]
pub struct Budget {
    limits: Limits,
    fuel: Cell<u64>,
    depth: Cell<u32>,
    bytes: Cell<u64>,
    started: Cell<Instant>,
    ticks: Cell<u32>,
}

impl Budget {
    /// A fresh budget starting now.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            fuel: Cell::new(limits.fuel),
            depth: Cell::new(0),
            bytes: Cell::new(0),
            started: Cell::new(Instant::now()),
            ticks: Cell::new(0),
        }
    }

    /// Spends `n` steps; checks the clock every few thousand.
    ///
    /// # Errors
    /// When fuel or time ran out.
    pub fn steps(&self, n: u64) -> Result<(), Exhausted> {
        let left = self.fuel.get();
        if left < n {
            self.fuel.set(0);
            return Err(Exhausted::Fuel(self.limits.fuel));
        }
        self.fuel.set(left - n);
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t.is_multiple_of(1024) || n > 4096 {
            self.check_time()?;
        }
        Ok(())
    }

    /// Checks the wall clock.
    ///
    /// # Errors
    /// When the time is up.
    pub fn check_time(&self) -> Result<(), Exhausted> {
        if self.started.get().elapsed() > self.limits.time {
            return Err(Exhausted::Time(self.limits.time));
        }
        Ok(())
    }

    /// Accounts for `n` bytes about to be allocated (call *before* allocating).
    ///
    /// # Errors
    /// When the memory bound would be passed.
    pub fn alloc(&self, n: u64) -> Result<(), Exhausted> {
        let total = self.bytes.get().saturating_add(n);
        if total > self.limits.max_bytes {
            return Err(Exhausted::Memory(self.limits.max_bytes));
        }
        self.bytes.set(total);
        Ok(())
    }

    /// Enters one nesting level; the guard leaves it.
    ///
    /// # Errors
    /// When too deep.
    pub fn enter(&self) -> Result<DepthGuard<'_>, Exhausted> {
        let d = self.depth.get() + 1;
        if d > self.limits.max_depth {
            return Err(Exhausted::Depth(self.limits.max_depth));
        }
        self.depth.set(d);
        Ok(DepthGuard { budget: self })
    }

    /// Starts a fresh allowance of steps, bytes and time (planning gives
    /// each control its own), keeping the current depth.
    pub fn reset(&self) {
        self.fuel.set(self.limits.fuel);
        self.bytes.set(0);
        self.started.set(Instant::now());
    }

    /// Steps used so far.
    pub fn used(&self) -> u64 {
        self.limits.fuel - self.fuel.get()
    }
}

/// Leaves a nesting level when dropped.
#[derive(Debug)]
pub struct DepthGuard<'a> {
    budget: &'a Budget,
}

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.budget
            .depth
            .set(self.budget.depth.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_runs_out() {
        let b = Budget::new(Limits {
            fuel: 10,
            max_depth: 2,
            max_bytes: 100,
            time: Duration::from_secs(60),
        });
        assert!(b.steps(10).is_ok());
        assert_eq!(b.steps(1), Err(Exhausted::Fuel(10)));
        let _a = b.enter().expect("1");
        let _b = b.enter().expect("2");
        assert_eq!(b.enter().err(), Some(Exhausted::Depth(2)));
        assert!(b.alloc(100).is_ok());
        assert_eq!(b.alloc(1), Err(Exhausted::Memory(100)));
        let slow = Budget::new(Limits {
            time: Duration::ZERO,
            ..Limits::default()
        });
        std::thread::sleep(Duration::from_millis(2));
        assert!(matches!(slow.check_time(), Err(Exhausted::Time(_))));
    }
}
