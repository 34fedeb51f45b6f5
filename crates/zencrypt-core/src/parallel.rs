//! Independent per-item work spread over the machine's cores.

/// Items below this count are worked on the calling thread: a thread costs more than
/// they take.
const PARALLEL_FROM: usize = 2048;
/// Most threads used, the caller's included.
const MAX_THREADS: usize = 4;

/// `f` over every item, in order, on up to one thread per core (the caller's included).
pub fn map<T: Sync, U: Send>(items: &[T], f: impl Fn(&T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS));
    if threads < 2 || items.len() < PARALLEL_FROM {
        return items.iter().map(f).collect();
    }
    let per = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let mut parts = items.chunks(per);
        let first = parts.next().unwrap_or_default();
        let others: Vec<_> = parts
            .map(|part| s.spawn(move || part.iter().map(f).collect::<Vec<U>>()))
            .collect();
        let mut out: Vec<U> = first.iter().map(f).collect();
        for h in others {
            match h.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_at_every_size() {
        for n in [0usize, 1, 2047, 2048, 2049, 10_001] {
            let items: Vec<usize> = (0..n).collect();
            let out = super::map(&items, |i| i * 3 + 1);
            assert_eq!(
                out,
                items.iter().map(|i| i * 3 + 1).collect::<Vec<_>>(),
                "{n}"
            );
        }
    }
}
