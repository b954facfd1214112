//! Work on the cores the machine has: a slice cut into contiguous runs of about equal
//! weight, one run per thread, results back in order. Restore decodes a snapshot's group
//! blocks this way and a snapshot encodes its groups this way; small inputs stay on the
//! calling thread, where a thread would cost more than it saves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

/// Less work than this (in the caller's unit of weight, bytes or series) per thread is
/// done on fewer threads.
pub const MIN_WEIGHT_PER_THREAD: usize = 1 << 16;

/// Runs `work` on contiguous runs of `items` (each given with the index of its first item)
/// on up to as many threads as there are cores, each run of about the same total `weight`,
/// and returns the results in the order of the runs. A thread that cannot be started is
/// replaced by the calling thread; a panic in `work` is passed on to the caller.
pub fn in_runs<I: Sync, T: Send>(
    items: &[I],
    weight: impl Fn(&I) -> usize,
    work: impl Fn(usize, &[I]) -> T + Sync,
) -> Vec<T> {
    let weights: Vec<usize> = items.iter().map(weight).collect();
    let total: usize = weights.iter().sum();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores
        .min(total / MIN_WEIGHT_PER_THREAD)
        .min(items.len())
        .max(1);
    let runs = split(&weights, total, threads);
    if runs.len() <= 1 {
        return vec![work(0, items)];
    }
    let work = &work;
    thread::scope(|scope| {
        let (last, others) = runs.split_last().expect("two runs or more");
        let started: Vec<_> = others
            .iter()
            .map(|&(start, end)| {
                let spawned = thread::Builder::new()
                    .name("persist-worker".into())
                    .spawn_scoped(scope, move || work(start, &items[start..end]));
                spawned.map_err(|_| (start, end))
            })
            .collect();
        let mine = work(last.0, &items[last.0..last.1]);
        let mut results: Vec<T> = started
            .into_iter()
            .map(|handle| match handle {
                Ok(handle) => handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                Err((start, end)) => work(start, &items[start..end]),
            })
            .collect();
        results.push(mine);
        results
    })
}

/// Runs `work` as [`in_runs`] does, but on worker threads taking runs (several per thread)
/// from a queue, while the calling thread hands each result to `sink` in the order of the
/// runs, as soon as it and those before it are done: the caller's own sequential part
/// (restore linking groups into the store) overlaps the work on later runs. `sink` is
/// given each run's total weight too. Without the cores for it, or when no thread can be
/// started, everything runs on the calling thread.
pub fn in_runs_to<I: Sync, T: Send>(
    items: &[I],
    weight: impl Fn(&I) -> usize,
    work: impl Fn(usize, &[I]) -> T + Sync,
    mut sink: impl FnMut(T, usize),
) {
    let weights: Vec<usize> = items.iter().map(weight).collect();
    let total: usize = weights.iter().sum();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(total / MIN_WEIGHT_PER_THREAD).min(items.len());
    // More runs than threads, so that the first results come early.
    let runs = split(&weights, total, threads.max(1) * RUNS_PER_THREAD);
    let run_weight = |&(start, end): &(usize, usize)| weights[start..end].iter().sum::<usize>();
    if threads < 2 {
        for run in &runs {
            sink(work(run.0, &items[run.0..run.1]), run_weight(run));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let (sender, results) = mpsc::channel();
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .filter_map(|_| {
                let (sender, next, runs, work) = (sender.clone(), &next, &runs, &work);
                let worker = move || loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(start, end)) = runs.get(i) else {
                        return;
                    };
                    if sender.send((i, work(start, &items[start..end]))).is_err() {
                        return;
                    }
                };
                thread::Builder::new()
                    .name("persist-worker".into())
                    .spawn_scoped(scope, worker)
                    .ok()
            })
            .collect();
        drop(sender);
        let mut done: Vec<Option<T>> = runs.iter().map(|_| None).collect();
        let mut handed = 0;
        while handed < runs.len() {
            let (i, result) = if workers.is_empty() {
                // No worker started: this thread takes the runs itself.
                let i = next.fetch_add(1, Ordering::Relaxed);
                let (start, end) = runs[i];
                (i, work(start, &items[start..end]))
            } else {
                match results.recv() {
                    Ok(received) => received,
                    // Every worker is gone: one panicked, and the join below says why.
                    Err(_) => break,
                }
            };
            done[i] = Some(result);
            while let Some(result) = done.get_mut(handed).and_then(Option::take) {
                sink(result, run_weight(&runs[handed]));
                handed += 1;
            }
        }
        for worker in workers {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

/// Runs per worker thread in [`in_runs_to`].
const RUNS_PER_THREAD: usize = 4;

/// Cuts `weights` into at most `parts` contiguous non-empty runs `(start, end)` of about
/// `total / parts` each.
fn split(weights: &[usize], total: usize, parts: usize) -> Vec<(usize, usize)> {
    let target = total.div_ceil(parts.max(1)).max(1);
    let mut runs = Vec::with_capacity(parts);
    let (mut start, mut sum) = (0, 0);
    for (i, &w) in weights.iter().enumerate() {
        sum += w;
        if sum >= target && runs.len() + 1 < parts {
            runs.push((start, i + 1));
            start = i + 1;
            sum = 0;
        }
    }
    if start < weights.len() {
        runs.push((start, weights.len()));
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_cover_every_item_once_in_order() {
        for (weights, parts) in [
            (vec![1; 10], 3),
            (vec![100, 1, 1, 1], 2),
            (vec![1, 1, 1, 100], 2),
            (vec![0, 0, 0], 2),
            (vec![5], 4),
            (vec![], 2),
        ] {
            let total = weights.iter().sum();
            let runs = split(&weights, total, parts);
            assert!(runs.len() <= parts.max(1), "{weights:?}: {runs:?}");
            let mut next = 0;
            for &(start, end) in &runs {
                assert_eq!(start, next, "{weights:?}: {runs:?}");
                assert!(end > start, "{weights:?}: {runs:?}");
                next = end;
            }
            assert_eq!(next, weights.len(), "{weights:?}: {runs:?}");
        }
        assert_eq!(split(&[1; 10], 10, 2), vec![(0, 5), (5, 10)]);
    }

    #[test]
    fn results_come_back_in_order_also_on_threads() {
        let items: Vec<usize> = (0..1000).collect();
        let heavy = |_: &usize| MIN_WEIGHT_PER_THREAD;
        let runs = in_runs(&items, heavy, |first, run| (first, run.to_vec()));
        let mut next = 0;
        for (first, run) in runs {
            assert_eq!(first, next);
            next += run.len();
            assert_eq!(run, items[first..next]);
        }
        assert_eq!(next, items.len());
        // Light work stays in one run on the calling thread.
        assert_eq!(in_runs(&items, |_| 1, |_, run| run.len()), vec![1000]);
    }

    #[test]
    fn runs_reach_the_sink_in_order_with_their_weight() {
        let items: Vec<usize> = (0..1000).collect();
        for heavy in [true, false] {
            let weight = |_: &usize| if heavy { MIN_WEIGHT_PER_THREAD } else { 1 };
            let mut seen = Vec::new();
            let mut weights = 0;
            in_runs_to(
                &items,
                weight,
                |_, run| run.to_vec(),
                |run, w| {
                    weights += w;
                    seen.extend(run);
                },
            );
            assert_eq!(seen, items);
            assert_eq!(weights, items.iter().map(weight).sum::<usize>());
        }
    }
}
