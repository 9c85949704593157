//! Token samplers, applied in llama.cpp's usual order: repetition penalty, top-k,
//! top-p, min-p, temperature, then a draw from the remaining distribution with a
//! seeded generator. Temperature ≤ 0 means greedy (argmax).

/// Sampling parameters (llama.cpp's defaults).
#[derive(Clone, Debug)]
pub struct SamplerParams {
    pub temp: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    /// How many recent tokens the penalty looks at.
    pub repeat_last_n: usize,
    pub seed: u64,
}

impl Default for SamplerParams {
    fn default() -> Self {
        SamplerParams {
            temp: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5eed,
        }
    }
}

/// A sampler with its generator state.
pub struct Sampler {
    p: SamplerParams,
    state: u64,
}

/// Log-softmax of `logits` (f64 for accuracy).
pub fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let mx = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = logits
        .iter()
        .map(|&l| (l as f64 - mx).exp())
        .sum::<f64>()
        .ln()
        + mx;
    logits.iter().map(|&l| l as f64 - lse).collect()
}

/// The `k` most likely tokens with their log-probabilities, best first.
pub fn top_k_logprobs(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let lp = log_softmax(logits);
    let mut idx: Vec<u32> = (0..logits.len() as u32).collect();
    let k = k.min(idx.len());
    let nth = k.saturating_sub(1).min(idx.len().saturating_sub(1));
    idx.select_nth_unstable_by(nth, |&a, &b| lp[b as usize].total_cmp(&lp[a as usize]));
    let mut top: Vec<(u32, f64)> = idx[..k].iter().map(|&i| (i, lp[i as usize])).collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    top
}

impl Sampler {
    pub fn new(p: SamplerParams) -> Self {
        let state = p.seed ^ 0x9E37_79B9_7F4A_7C15;
        Sampler { p, state }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Picks the next token from `logits` given the tokens so far.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> u32 {
        // Penalized logits are a copy; without a penalty the logits are read in place.
        let penalized;
        let l: &[f32] = if self.p.repeat_penalty != 1.0 {
            let mut c = logits.to_vec();
            let start = history.len().saturating_sub(self.p.repeat_last_n);
            let mut seen = std::collections::HashSet::new();
            for &t in &history[start..] {
                if seen.insert(t) {
                    if let Some(v) = c.get_mut(t as usize) {
                        *v = if *v > 0.0 {
                            *v / self.p.repeat_penalty
                        } else {
                            *v * self.p.repeat_penalty
                        };
                    }
                }
            }
            penalized = c;
            &penalized
        } else {
            logits
        };
        if self.p.temp <= 0.0 {
            return argmax(l);
        }
        // Candidates sorted by logit (ties: lower id first), cut by top-k.
        let cand = if self.p.top_k > 0 && self.p.top_k < l.len() {
            top_k_sorted(l, self.p.top_k)
        } else {
            let mut c: Vec<(u32, f32)> =
                l.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
            c.sort_by(|a, b| b.1.total_cmp(&a.1));
            c
        };
        self.sample_sorted(cand)
    }

    /// How many of the largest logits [`Sampler::sample_top`] needs — the sampler's chain
    /// reads only those: top-k's k (1 when greedy), when no penalty needs the whole
    /// vocabulary and k is at most `max`; `None`: sample from the full logits.
    pub fn candidates_needed(&self, max: usize) -> Option<usize> {
        let k = if self.p.temp <= 0.0 { 1 } else { self.p.top_k };
        (self.p.repeat_penalty == 1.0 && k > 0 && k <= max).then_some(k)
    }

    /// [`Sampler::sample`] from a TOP_K row (`Op::TopK`: max, log-sum-exp, then the k
    /// largest logits as (id, logit), largest first, ties to the lower id) with k =
    /// [`Sampler::candidates_needed`]: the same chain on the same candidates, so the same
    /// token as `sample` on the logits the row was taken from.
    pub fn sample_top(&mut self, top: &[f32]) -> u32 {
        let mut cand: Vec<(u32, f32)> = top[2..].chunks(2).map(|c| (c[0] as u32, c[1])).collect();
        if self.p.temp <= 0.0 {
            return cand.first().map_or(0, |c| c.0);
        }
        // The row may hold more (a caller also wanting log-probs): the chain takes top-k.
        cand.truncate(self.p.top_k.max(1));
        self.sample_sorted(cand)
    }

    /// The chain after top-k: top-p, min-p, temperature, the draw.
    fn sample_sorted(&mut self, mut cand: Vec<(u32, f32)>) -> u32 {
        if cand.is_empty() {
            return 0;
        }
        let probs = |c: &[(u32, f32)], t: f32| -> Vec<f64> {
            let mx = c[0].1 as f64;
            let e: Vec<f64> = c
                .iter()
                .map(|x| ((x.1 as f64 - mx) / t as f64).exp())
                .collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        };
        // top-p on the untempered distribution, as llama.cpp's default chain does.
        let pr = probs(&cand, 1.0);
        if self.p.top_p < 1.0 {
            let mut acc = 0.0;
            let mut keep = cand.len();
            for (i, p) in pr.iter().enumerate() {
                acc += p;
                if acc >= self.p.top_p as f64 {
                    keep = i + 1;
                    break;
                }
            }
            cand.truncate(keep.max(1));
        }
        if self.p.min_p > 0.0 {
            let pmax = pr[0];
            let keep = pr
                .iter()
                .take(cand.len())
                .take_while(|&&p| p >= self.p.min_p as f64 * pmax)
                .count();
            cand.truncate(keep.max(1));
        }
        let pr = probs(&cand, self.p.temp);
        let mut r = self.uniform();
        for (c, p) in cand.iter().zip(&pr) {
            if r < *p {
                return c.0;
            }
            r -= p;
        }
        cand.last().map_or(0, |c| c.0)
    }
}

/// `v`'s rank in [`f32::total_cmp`]'s order as an integer: `key(a) < key(b)` exactly
/// when `a.total_cmp(&b)` is `Less` (the same bit trick `total_cmp` uses).
fn key(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

/// The `k` largest logits as (id, logit), largest first, ties by lower id: what a stable
/// descending sort of all logits would keep, in one pass (no full sort of the vocabulary:
/// a candidate enters only when it beats the current k-th). Once `k` candidates are held,
/// blocks of logits whose largest key does not beat the k-th are skipped whole (a
/// vectorizable max over integer keys), so a pass over 152k logits costs tens of µs.
pub fn top_k_sorted(l: &[f32], k: usize) -> Vec<(u32, f32)> {
    const BLOCK: usize = 256;
    let mut top: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return top;
    }
    // `before(a, b)`: a ranks before b.
    let before = |a: (u32, f32), b: (u32, f32)| match a.1.total_cmp(&b.1) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => a.0 < b.0,
    };
    for (bi, block) in l.chunks(BLOCK).enumerate() {
        // A later logit equal to the k-th has a higher id, so it ranks after it: only a
        // strictly larger key can enter.
        if top.len() == k {
            let kth = key(top[k - 1].1);
            if block.iter().fold(i32::MIN, |m, &v| m.max(key(v))) <= kth {
                continue;
            }
        }
        for (j, &v) in block.iter().enumerate() {
            let c = ((bi * BLOCK + j) as u32, v);
            if top.len() == k && !before(c, top[k - 1]) {
                continue;
            }
            let at = top.partition_point(|&t| before(t, c));
            top.insert(at, c);
            top.truncate(k);
        }
    }
    top
}

/// Index of the largest logit (the first on ties).
pub fn argmax(l: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::top_k_sorted;

    /// The one-pass top-k keeps exactly what a stable descending sort of every logit
    /// keeps, ties included (random logits from a few values, so ties are common; -0.0
    /// and +0.0 both occur), over vocabularies of up to ~5,000 so the block skip runs.
    #[test]
    fn top_k_equals_full_stable_sort() {
        let mut state = 12345u64;
        for case in 0..200usize {
            let n = 1 + case * 37 % 5000;
            let l: Vec<f32> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    match (state >> 33) % 15 {
                        13 => -0.0,
                        14 => 0.0,
                        v => v as f32 - 6.0,
                    }
                })
                .collect();
            for k in [1usize, 2, 5, 40, n.saturating_sub(1).max(1)] {
                let mut all: Vec<(u32, f32)> =
                    l.iter().enumerate().map(|(i, &v)| (i as u32, v)).collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1));
                all.truncate(k);
                assert_eq!(top_k_sorted(&l, k), all, "n={n} k={k}");
            }
        }
    }
}
