//! The decoding loop behind `vkgraph serve`: `n_seq` slots, one sequence of the KV cache
//! each; every step one forward pass over all active slots (continuous batching).
//!
//! Invariants:
//! - The engine thread owns the `Session` (backends are not shared across threads); HTTP
//!   handlers talk to it through a channel of [`Job`]s and get [`Event`]s back.
//! - A step's batch puts every token whose logits are not needed first and, last, one
//!   token per slot that samples this step (a decoding slot's new token, or the final
//!   token of a prompt), so one pass returns exactly the logits it needs
//!   (`Session::forward_batch_last`). Each sequence's tokens stay in order.
//! - Prompts are fed in chunks of at most `n_batch` tokens shared by the slots in prefill,
//!   so a long prompt does not stall the streams of decoding slots.
//! - A slot's greedy output does not depend on its neighbours: sequences attend only
//!   their own cells (kv::KvCache).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use crate::sample::{Sampler, SamplerParams};
use crate::sched::session::Session;
use crate::tokenizer::{StreamDecoder, Tokenizer};

/// What to generate, tokenized and checked by the HTTP layer.
#[derive(Clone, Debug)]
pub struct GenParams {
    pub prompt: Vec<u32>,
    pub max_tokens: usize,
    pub sampler: SamplerParams,
    pub stop: Vec<String>,
    /// Top log-probabilities to report per generated token (0: none).
    pub n_probs: usize,
    /// Keep generating past end-of-generation tokens (llama.cpp's `ignore_eos`, benchmarks).
    pub ignore_eos: bool,
    /// Tokens a context shift keeps at the start (llama-server's `n_keep`).
    pub n_keep: usize,
}

/// One generation request and where its events go.
pub struct Job {
    pub params: GenParams,
    pub events: UnboundedSender<Event>,
}

/// What a request hears back, in order: `Token`s, then one `Done` or `Error`.
#[derive(Clone, Debug)]
pub enum Event {
    /// Text that became final (stop strings held back until ruled out), with the token
    /// that completed it and its top log-probabilities when asked.
    Token {
        text: String,
        id: u32,
        logprob: f64,
        top: Vec<(u32, f64)>,
    },
    Done {
        finish_reason: &'static str,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    Error(String),
}

/// Counters the engine keeps for `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub requests: AtomicU64,
    pub prompt_tokens: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub busy_slots: AtomicU64,
    pub queued: AtomicU64,
    /// Prompt tokens found in a slot's cache and not computed again.
    pub cached_prompt_tokens: AtomicU64,
    /// Nanoseconds spent in forward passes.
    pub forward_ns: AtomicU64,
    /// Context shifts done (`serve --context-shift`).
    pub context_shifts: AtomicU64,
}

struct Slot {
    seq: usize,
    job: Job,
    sampler: Sampler,
    /// Prompt tokens not yet fed.
    pending: Vec<u32>,
    /// The token to feed next step (decoding).
    next: Option<u32>,
    generated: Vec<u32>,
    history: Vec<u32>,
    decoder: StreamDecoder,
    /// Decoded text not sent yet because it may begin a stop string.
    held: String,
}

/// Runs until every sender of `jobs` is gone. `n_batch`: prompt tokens per step.
/// Plans, records and compiles the decode batches the engine will run most — 1 to
/// `min(slots, 16)` sequences of one token each, sampled from the device's top-k with
/// the default chain — so the first requests do not pay for pipeline creation (llama-server
/// compiles its pipelines at start too); the cache is cleared after. Returns how many
/// batch sizes were warmed.
pub fn warm_up(s: &mut Session) -> crate::Result<usize> {
    let k = Sampler::new(SamplerParams::default())
        .candidates_needed(crate::backend::vulkan::dispatch::top_k::MAX_K as usize)
        .unwrap_or(1);
    let most = s
        .kv()
        .n_seq()
        .min(crate::backend::vulkan::dispatch::mul_mat::MAT_VEC_MAX_N as usize);
    for n in 1..=most {
        let seqs: Vec<usize> = (0..n).collect();
        s.forward_top_k(&seqs, &vec![0; n], n, k)?;
        s.reset();
    }
    Ok(most)
}

/// `context_shift`: a decoding slot whose context is full drops half of its tokens after
/// `n_keep` (`Session::shift_seq`) instead of ending with "length".
pub fn run(
    mut s: Session,
    tok: Arc<Tokenizer>,
    jobs: mpsc::Receiver<Job>,
    n_batch: usize,
    context_shift: bool,
    metrics: Arc<Metrics>,
) {
    let n_seq = s.kv().n_seq();
    let mut slots: Vec<Option<Slot>> = (0..n_seq).map(|_| None).collect();
    let mut queue: std::collections::VecDeque<Job> = Default::default();
    // The tokens each sequence's cells hold, kept after its request ends (prompt reuse).
    let mut cached: Vec<Vec<u32>> = vec![Vec::new(); n_seq];
    let n_vocab = s.model.hp.n_vocab;
    loop {
        // Take new jobs: wait when idle, else only what has arrived.
        if slots.iter().all(Option::is_none) && queue.is_empty() {
            match jobs.recv() {
                Ok(j) => queue.push_back(j),
                Err(_) => return,
            }
        }
        while let Ok(j) = jobs.try_recv() {
            queue.push_back(j);
        }
        while let Some(job) = queue.front() {
            // The free slot whose cached tokens share the longest prefix with the prompt
            // (a chat's next turn finds its conversation); that prefix is not fed again.
            let prompt = &job.params.prompt;
            let Some((seq, common)) = (0..n_seq)
                .filter(|&q| slots[q].is_none())
                .map(|q| (q, common_prefix(&cached[q], prompt)))
                .max_by_key(|&(q, c)| (c, std::cmp::Reverse(q)))
            else {
                break;
            };
            let job = queue.pop_front().expect("front exists");
            // At least the prompt's last token is fed: its logits start the answer.
            let keep = common.min(job.params.prompt.len() - 1);
            let _ = s.truncate_seq(seq, keep);
            cached[seq].truncate(keep);
            metrics.requests.fetch_add(1, Ordering::Relaxed);
            metrics
                .prompt_tokens
                .fetch_add(job.params.prompt.len() as u64, Ordering::Relaxed);
            metrics
                .cached_prompt_tokens
                .fetch_add(keep as u64, Ordering::Relaxed);
            slots[seq] = Some(Slot {
                seq,
                sampler: Sampler::new(job.params.sampler.clone()),
                pending: job.params.prompt[keep..].to_vec(),
                next: None,
                generated: Vec::new(),
                history: job.params.prompt.clone(),
                decoder: StreamDecoder::new(),
                held: String::new(),
                job,
            });
        }
        // Requests whose client left (their event receiver is gone) end here.
        for slot in slots.iter_mut() {
            if slot.as_ref().is_some_and(|sl| sl.job.events.is_closed()) {
                *slot = None;
            }
        }
        queue.retain(|j| !j.events.is_closed());
        metrics.queued.store(queue.len() as u64, Ordering::Relaxed);
        metrics.busy_slots.store(
            slots.iter().filter(|s| s.is_some()).count() as u64,
            Ordering::Relaxed,
        );

        // The batch: tokens without logits first, then one sampling token per slot.
        // (sequence, token) pairs.
        let mut front: Vec<(usize, u32)> = Vec::new();
        let mut tail: Vec<(usize, u32)> = Vec::new();
        let prefilling = slots
            .iter()
            .flatten()
            .filter(|sl| !sl.pending.is_empty())
            .count();
        let share = n_batch.max(1).div_ceil(prefilling.max(1));
        let mut samplers: Vec<usize> = Vec::new(); // slot index per tail row
        if context_shift {
            let cap = s.kv().seq_capacity();
            for slot in slots.iter_mut() {
                let Some(sl) = slot else { continue };
                if sl.next.is_none() || s.kv().len(sl.seq) < cap {
                    continue;
                }
                match s.shift_full_seq(sl.seq, sl.job.params.n_keep) {
                    Ok((keep, discard)) => {
                        cached[sl.seq].drain(keep..keep + discard);
                        metrics.context_shifts.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        let _ = sl.job.events.send(Event::Error(e.to_string()));
                        let _ = s.truncate_seq(sl.seq, 0);
                        cached[sl.seq].clear();
                        *slot = None;
                    }
                }
            }
        }
        for (i, slot) in slots.iter_mut().enumerate() {
            let Some(sl) = slot else { continue };
            if let Some(t) = sl.next.take() {
                tail.push((sl.seq, t));
                samplers.push(i);
            } else if !sl.pending.is_empty() {
                let take = sl.pending.len().min(share);
                let chunk: Vec<u32> = sl.pending.drain(..take).collect();
                let last_chunk = sl.pending.is_empty();
                let (body, last) = if last_chunk {
                    (&chunk[..chunk.len() - 1], chunk.last().copied())
                } else {
                    (&chunk[..], None)
                };
                front.extend(body.iter().map(|&t| (sl.seq, t)));
                if let Some(t) = last {
                    tail.push((sl.seq, t));
                    samplers.push(i);
                }
            }
        }
        if front.is_empty() && tail.is_empty() {
            continue;
        }
        let (seqs, toks): (Vec<usize>, Vec<u32>) = front.iter().chain(&tail).copied().unzip();
        for (&q, &t) in seqs.iter().zip(&toks) {
            cached[q].push(t);
        }
        // Where every sampling slot's chain reads only the top-k logits (and its log-probs
        // fit), the device reduces each row to those (Op::TopK): 2 + 2k floats per row
        // come back instead of the vocabulary.
        let max_k = crate::backend::vulkan::dispatch::top_k::MAX_K as usize;
        let top_k: Option<usize> = samplers
            .iter()
            .map(|&i| {
                let sl = slots[i].as_ref().expect("sampling slot is active");
                let n_probs = sl.job.params.n_probs;
                sl.sampler
                    .candidates_needed(max_k)
                    .map(|k| k.max(n_probs))
                    .filter(|&k| k <= max_k)
            })
            .try_fold(1usize, |acc, k| k.map(|k| acc.max(k)));
        let t0 = std::time::Instant::now();
        let result = match top_k {
            Some(k) if !tail.is_empty() => s.forward_top_k(&seqs, &toks, tail.len(), k),
            _ => s.forward_batch_last(&seqs, &toks, tail.len().max(1)),
        };
        metrics
            .forward_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let logits = match result {
            Ok(l) => l,
            Err(e) => {
                // The batch failed as a whole: fail every slot that was in it; what the
                // caches hold is unknown now.
                for c in cached.iter_mut() {
                    c.clear();
                }
                for q in 0..n_seq {
                    let _ = s.truncate_seq(q, 0);
                }
                for slot in slots.iter_mut() {
                    if let Some(sl) = slot.take() {
                        let _ = sl.job.events.send(Event::Error(e.to_string()));
                    }
                }
                continue;
            }
        };
        if tail.is_empty() {
            continue;
        }
        for (row, &i) in samplers.iter().enumerate() {
            let row_logits = match top_k {
                Some(k) => Row::Top(&logits[row * (2 + 2 * k)..][..2 + 2 * k]),
                None => Row::Logits(&logits[row * n_vocab..][..n_vocab]),
            };
            let finished = {
                let sl = slots[i].as_mut().expect("sampling slot is active");
                // With context shifts a full slot shifts before its next token.
                let capacity = if context_shift {
                    usize::MAX
                } else {
                    s.kv().seq_capacity()
                };
                step(sl, &tok, row_logits, capacity, s.kv().len(sl.seq))
            };
            if let Some(reason) = finished {
                let sl = slots[i].take().expect("active");
                metrics
                    .generated_tokens
                    .fetch_add(sl.generated.len() as u64, Ordering::Relaxed);
                let _ = sl.job.events.send(Event::Done {
                    finish_reason: reason,
                    prompt_tokens: sl.job.params.prompt.len(),
                    completion_tokens: sl.generated.len(),
                });
            }
        }
    }
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// One output row of a step: the logits, or a TOP_K row (max, log-sum-exp, the k
/// largest as (id, logit)).
#[derive(Clone, Copy)]
enum Row<'a> {
    Logits(&'a [f32]),
    Top(&'a [f32]),
}

/// Samples the slot's next token from its row, streams its text, and says whether (and
/// why) the request is finished.
fn step(
    sl: &mut Slot,
    tok: &Tokenizer,
    row: Row<'_>,
    capacity: usize,
    cached: usize,
) -> Option<&'static str> {
    let id = match row {
        Row::Logits(l) => sl.sampler.sample(l, &sl.history),
        Row::Top(t) => sl.sampler.sample_top(t),
    };
    if tok.is_eog(id) && !sl.job.params.ignore_eos {
        flush(sl, None);
        return Some("stop");
    }
    let n_probs = sl.job.params.n_probs;
    let (logprob, top) = match row {
        _ if n_probs == 0 => (0.0, Vec::new()),
        Row::Logits(l) => (
            crate::sample::log_softmax(l)[id as usize],
            crate::sample::top_k_logprobs(l, n_probs),
        ),
        Row::Top(t) => {
            // The chosen id is among the candidates (the chain draws from them).
            let lse = f64::from(t[1]);
            let cands: Vec<(u32, f64)> = t[2..]
                .chunks(2)
                .map(|c| (c[0] as u32, f64::from(c[1]) - lse))
                .collect();
            let lp = cands
                .iter()
                .find(|c| c.0 == id)
                .map_or(f64::NEG_INFINITY, |c| c.1);
            (lp, cands.into_iter().take(n_probs).collect())
        }
    };
    sl.generated.push(id);
    sl.history.push(id);
    let piece = sl.decoder.push(tok, id);
    sl.held.push_str(&piece);
    // A stop string ends the text before it.
    if let Some(cut) = sl
        .job
        .params
        .stop
        .iter()
        .filter(|st| !st.is_empty())
        .filter_map(|st| sl.held.find(st.as_str()))
        .min()
    {
        sl.held.truncate(cut);
        flush(sl, Some((id, logprob, top)));
        return Some("stop");
    }
    // Send what can no longer begin a stop string.
    let keep = sl
        .job
        .params
        .stop
        .iter()
        .map(|st| longest_prefix_suffix(&sl.held, st))
        .max()
        .unwrap_or(0);
    let send_to = sl.held.len() - keep;
    let text: String = sl.held.drain(..send_to).collect();
    let _ = sl.job.events.send(Event::Token {
        text,
        id,
        logprob,
        top,
    });
    if sl.generated.len() >= sl.job.params.max_tokens || cached + 1 > capacity {
        flush(sl, None);
        return Some("length");
    }
    sl.next = Some(id);
    None
}

/// Sends the held-back text (a finished request can no longer match a stop string).
/// A sampled token with its log-probability and the top alternatives.
type Sampled = (u32, f64, Vec<(u32, f64)>);

fn flush(sl: &mut Slot, last: Option<Sampled>) {
    if sl.held.is_empty() && last.is_none() {
        return;
    }
    let text = std::mem::take(&mut sl.held);
    let (id, logprob, top) = last.unwrap_or((u32::MAX, 0.0, Vec::new()));
    let _ = sl.job.events.send(Event::Token {
        text,
        id,
        logprob,
        top,
    });
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop`, on a char
/// boundary.
fn longest_prefix_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&k| {
            text.is_char_boundary(text.len() - k)
                && stop.is_char_boundary(k)
                && text.ends_with(&stop[..k])
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn held_back_text_is_a_stop_prefix() {
        use super::longest_prefix_suffix as f;
        assert_eq!(f("hello wor", "world"), 3);
        assert_eq!(f("hello", "world"), 0);
        assert_eq!(f("ab", "abc"), 2);
        assert_eq!(f("abc", "abc"), 0, "a whole match is found, not held");
    }
}
