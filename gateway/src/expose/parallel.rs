//! Spreading a cold render over the cores: items are split into one contiguous share per
//! core by their cost, and each share is worked off on a scoped thread. Small jobs stay on
//! the calling thread, where a thread start would cost more than it saves.

/// Below this total cost (about one series each) a job runs on the calling thread.
const PARALLEL_FROM_COST: usize = 20_000;

/// `work` applied to every item, in order; on several threads when the items' total
/// `cost` is worth it.
pub fn parallel_map<T: Send, R: Send>(
    items: Vec<T>,
    cost: impl Fn(&T) -> usize,
    work: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let costs: Vec<usize> = items.iter().map(|item| cost(item).max(1)).collect();
    let total: usize = costs.iter().sum();
    if threads < 2 || items.len() < 2 || total < PARALLEL_FROM_COST {
        return items.into_iter().map(work).collect();
    }
    // Cut where the running cost passes each thread's share.
    let share = total.div_ceil(threads);
    let mut shares: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut current = Vec::new();
    let mut current_cost = 0;
    for (item, cost) in items.into_iter().zip(costs) {
        current.push(item);
        current_cost += cost;
        if current_cost >= share && shares.len() + 1 < threads {
            shares.push(std::mem::take(&mut current));
            current_cost = 0;
        }
    }
    shares.push(current);
    let work = &work;
    // Each share waits in a slot its thread takes it from; a share whose thread cannot be
    // started (out of threads or memory) is taken back and worked off here instead.
    let slots: Vec<parking_lot::Mutex<Option<Vec<T>>>> = shares
        .into_iter()
        .map(|share| parking_lot::Mutex::new(Some(share)))
        .collect();
    std::thread::scope(|scope| {
        let mut slots = slots.iter();
        let first = slots.next();
        let others: Vec<_> = slots
            .map(|slot| {
                let spawned = std::thread::Builder::new().spawn_scoped(scope, move || {
                    let share = slot.lock().take().unwrap_or_default();
                    share.into_iter().map(work).collect::<Vec<R>>()
                });
                (slot, spawned.ok())
            })
            .collect();
        // The first share runs here while the others run on their threads.
        let mut results: Vec<R> = run_here(first, work);
        for (slot, handle) in others {
            match handle {
                Some(handle) => results.extend(join(handle)),
                None => results.extend(run_here(Some(slot), work)),
            }
        }
        results
    })
}

fn run_here<T, R>(
    slot: Option<&parking_lot::Mutex<Option<Vec<T>>>>,
    work: &impl Fn(T) -> R,
) -> Vec<R> {
    let share = slot.and_then(|slot| slot.lock().take()).unwrap_or_default();
    share.into_iter().map(work).collect()
}

fn join<R>(handle: std::thread::ScopedJoinHandle<'_, Vec<R>>) -> Vec<R> {
    // A panic in a share is a bug in an encoder: pass it on as the caller's own.
    handle
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[cfg(test)]
mod tests {
    use super::parallel_map;

    #[test]
    fn keeps_the_order_on_one_thread_and_on_several() {
        for (len, cost) in [(5, 1), (1000, 100)] {
            let items: Vec<usize> = (0..len).collect();
            let doubled = parallel_map(items, |_| cost, |i| i * 2);
            assert_eq!(doubled, (0..len).map(|i| i * 2).collect::<Vec<_>>());
        }
    }
}
