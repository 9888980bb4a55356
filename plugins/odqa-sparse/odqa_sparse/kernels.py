"""Numba kernels: building the count matrix and the term-major postings, and batched exact top-k search.

Search (:func:`search_batch_scratch`, one call per batch of queries) is term-at-a-time over impact postings (per term:
ascending doc ids and float32 impacts) into a dense float32 accumulator that is reset only where it was touched,
with exact MaxScore-style dynamic pruning:

1. a query's terms are processed shortest posting list first (ties: term id), and every document's score is the
   float32 sum of its contributions *in that order*, with or without pruning, so both paths give bit-identical
   scores (the lengths are ``t_order``'s: an index's own, or for a shard of a sharded index the whole corpus's,
   so that a shard sums each score in the single index's order); ``ub = weight * max_impact`` bounds a term's
   contribution and ``rest[i]`` the sum of terms ``i..``;
2. before a long list, a lower bound ``theta`` of the final k-th score is tightened: the best partial scores are
   completed exactly (presence bitmap or binary search in the remaining lists), and being real final scores of
   distinct documents, their k-th largest bounds the final k-th score from below;
3. an unseen document is admitted from list ``i`` only if ``contribution + rest[i + 1]`` can reach ``theta``;
   once ``rest[i]`` cannot, no document is admitted any more ("candidate mode"): the candidates whose
   ``partial + rest`` can still reach ``theta`` are completed term by term, by presence bitmap for frequent
   terms (an O(1) rank lookup), else by binary search or a scan of the list, and dropped as soon as they cannot.

Pruning tests are strict and carry a relative margin covering float32 rounding, so a document tied with the k-th
score is never dropped and ties are broken by ascending doc index exactly as in exhaustive scoring. Pruning is
used only for queries whose contributions are all non-negative (BM25 okapi with negative idfs is scored
exhaustively). Documents that match no query term score 0 and are merged in by ascending index when they belong
to the top k (fewer than k matches, or negative scores). Hot loops are branch-free where the branch would be
unpredictable, so that the scattered memory accesses of consecutive iterations overlap.

Queries with two or more frequent terms (lists with presence bitmaps, e.g. okapi's idf-floored terms found in most
documents) are searched the same way one window of ``WINDOW`` documents at a time (:func:`_search_windows`): the
additions then land in a cache-resident window instead of an n_docs-sized accumulator, and once theta (the k-th
best score of the windows before) is out of an unseen document's reach, the rest of a window's lists are only
looked up for its candidates. Same summation order, same strict tests with slack: the same top k, bit for bit.

A per-query ``floor`` (a shard of a sharded index searched after others, seeded with the k-th best score merged
from them) starts theta there: the same strict tests then keep every document that may reach it, and only those
scoring above it are returned (fewer than k leave the row padded with index -1, score -inf).

Scoring given documents (:func:`score_all_batch`, :func:`score_candidates_batch`, for fusers) accumulates every
posting in the same term order, so each document gets bit for bit the score search gives it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# --------------------------------------------------------------------------------------------------------------
# Index building
# --------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def count_documents(flat, tok_ptr, n_terms):  # pragma: no cover - compiled
    """Term counts of each document, from flat token ids and per-document offsets.

    Returns CSR arrays ``(indptr int64, indices int32, data int32)`` with sorted column indices per row.
    """
    n_docs = tok_ptr.shape[0] - 1
    total = flat.shape[0]
    indptr = np.zeros(n_docs + 1, np.int64)
    indices = np.empty(total, np.int32)
    data = np.empty(total, np.int32)
    last = np.full(n_terms, -1, np.int64)
    pos = np.empty(n_terms, np.int64)
    nnz = 0
    for d in range(n_docs):
        start = nnz
        for j in range(tok_ptr[d], tok_ptr[d + 1]):
            t = flat[j]
            if last[t] != d:
                last[t] = d
                pos[t] = nnz
                indices[nnz] = t
                data[nnz] = 1
                nnz += 1
            else:
                data[pos[t]] += 1
        size = nnz - start
        if size > 48:
            order = np.argsort(indices[start:nnz])
            ti = indices[start:nnz][order]
            tc = data[start:nnz][order]
            indices[start:nnz] = ti
            data[start:nnz] = tc
        else:
            for a in range(start + 1, nnz):
                ti0 = indices[a]
                tc0 = data[a]
                b = a - 1
                while b >= start and indices[b] > ti0:
                    indices[b + 1] = indices[b]
                    data[b + 1] = data[b]
                    b -= 1
                indices[b + 1] = ti0
                data[b + 1] = tc0
        indptr[d + 1] = nnz
    return indptr, indices[:nnz].copy(), data[:nnz].copy()


@njit(cache=True, nogil=True)
def transpose_counts(indptr, indices, data, n_terms):  # pragma: no cover - compiled
    """CSR (docs × terms) → term-major postings ``(t_ptr int64, t_docs int32, t_counts int32)``, doc ids sorted."""
    n_docs = indptr.shape[0] - 1
    nnz = indices.shape[0]
    t_ptr = np.zeros(n_terms + 1, np.int64)
    for j in range(nnz):
        t_ptr[indices[j] + 1] += 1
    for t in range(n_terms):
        t_ptr[t + 1] += t_ptr[t]
    fill = t_ptr[:-1].copy()
    t_docs = np.empty(nnz, np.int32)
    t_counts = np.empty(nnz, np.int32)
    for d in range(n_docs):
        for j in range(indptr[d], indptr[d + 1]):
            t = indices[j]
            p = fill[t]
            t_docs[p] = d
            t_counts[p] = data[j]
            fill[t] = p + 1
    return t_ptr, t_docs, t_counts


#: How many best partial scores ``_tighten`` completes, as a multiple of k (at most 128, at least k).
TIGHTEN_FACTOR = 4
#: Terms in at least 1/BITMAP_DIVISOR of the documents get a presence bitmap (see ``build_bitmaps``).
BITMAP_DIVISOR = 32

# Weighting codes for ``term_impacts``.
OKAPI = 0  # idf * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))          (rank_bm25 BM25Okapi, BM25Plus sans delta)
LUCENE = 1  # idf * tf / (tf + k1 (1 - b + b dl / avgdl))                    (Lucene >= 8, bm25s "lucene")
BM25L = 2  # idf * tf (k1 + 1) (ctd + delta) / (k1 + ctd + delta), ctd = tf / (1 - b + b dl / avgdl)
TFIDF = 3  # tf' idf / ||doc||  with tf' = tf or 1 + log(tf)                 (scikit-learn TfidfVectorizer)


@njit(cache=True, nogil=True)
def term_impacts(t_ptr, t_docs, t_counts, doc_len, doc_norm, idf, kind, k1, b, delta, avgdl, sublinear):
    """Float32 impact of every posting (computed in float64), and each term's max and min impact."""
    n_terms = t_ptr.shape[0] - 1
    impacts = np.empty(t_docs.shape[0], np.float32)
    t_max = np.zeros(n_terms, np.float32)
    t_min = np.zeros(n_terms, np.float32)
    for t in range(n_terms):
        w = idf[t]
        hi = -np.inf
        lo = np.inf
        for p in range(t_ptr[t], t_ptr[t + 1]):
            tf = np.float64(t_counts[p])
            d = t_docs[p]
            if kind == TFIDF:
                if sublinear:
                    tf = 1.0 + np.log(tf)
                v = tf * w / doc_norm[d]
            else:
                norm = 1.0 - b + b * doc_len[d] / avgdl
                if kind == OKAPI:
                    v = w * (tf * (k1 + 1.0) / (tf + k1 * norm))
                elif kind == LUCENE:
                    v = w * (tf / (tf + k1 * norm))
                else:
                    ctd = tf / norm
                    v = w * tf * (k1 + 1.0) * (ctd + delta) / (k1 + ctd + delta)
            x = np.float32(v)
            impacts[p] = x
            if x > hi:
                hi = x
            if x < lo:
                lo = x
        if t_ptr[t + 1] > t_ptr[t]:
            t_max[t] = hi
            t_min[t] = lo
    return impacts, t_max, t_min


@njit(cache=True, nogil=True)
def tfidf_doc_norms(indptr, indices, data, idf, sublinear):  # pragma: no cover - compiled
    """L2 norm of each document's tf-idf vector (1 for empty documents, as scikit-learn leaves them)."""
    n_docs = indptr.shape[0] - 1
    norms = np.ones(n_docs, np.float64)
    for d in range(n_docs):
        s = 0.0
        for j in range(indptr[d], indptr[d + 1]):
            tf = np.float64(data[j])
            if sublinear:
                tf = 1.0 + np.log(tf)
            v = tf * idf[indices[j]]
            s += v * v
        if s > 0:
            norms[d] = np.sqrt(s)
    return norms


@njit(cache=True, nogil=True)
def build_bitmaps(t_ptr, t_docs, n_docs, min_df):  # pragma: no cover - compiled
    """Presence bitmaps with rank directories for the terms whose document frequency is at least ``min_df``.

    Returns ``(b_slot int32[n_terms], b_words uint64[n_long * W], b_rank int32[n_long * W])`` with
    ``W = ceil(n_docs / 64)``: term t's bitmap is words ``b_slot[t] * W ...`` (slot -1: no bitmap), and
    ``b_rank[slot * W + w]`` counts its documents in words before w, so a document's posting position is found
    with one popcount instead of a search in the posting list.
    """
    n_terms = t_ptr.shape[0] - 1
    n_words = (n_docs + 63) >> 6
    b_slot = np.full(n_terms, -1, np.int32)
    n_long = 0
    for t in range(n_terms):
        if t_ptr[t + 1] - t_ptr[t] >= min_df:
            b_slot[t] = n_long
            n_long += 1
    b_words = np.zeros(n_long * n_words, np.uint64)
    b_rank = np.zeros(n_long * n_words, np.int32)
    for t in range(n_terms):
        slot = b_slot[t]
        if slot < 0:
            continue
        base = slot * n_words
        for p in range(t_ptr[t], t_ptr[t + 1]):
            d = t_docs[p]
            b_words[base + (d >> 6)] |= np.uint64(1) << np.uint64(d & 63)
        total = 0
        for w in range(n_words):
            b_rank[base + w] = total
            total += _popcount(b_words[base + w])
    return b_slot, b_words, b_rank


# --------------------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True, inline="always")
def _popcount(x):  # pragma: no cover - compiled
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True, nogil=True, inline="always")
def _worse(s1, i1, s2, i2):  # pragma: no cover - compiled
    """Whether hit (s1, i1) ranks below hit (s2, i2): lower score, or equal score and larger index."""
    return s1 < s2 or (s1 == s2 and i1 > i2)


@njit(cache=True, nogil=True, inline="always")
def _sift_down(hs, hi, size, s, d):  # pragma: no cover - compiled
    """Put hit (s, d) in the root of a min-heap of ``size`` hits (dropping the root), then sift it to its place."""
    j = 0
    while True:
        c = 2 * j + 1
        if c >= size:
            break
        if c + 1 < size and _worse(hs[c + 1], hi[c + 1], hs[c], hi[c]):
            c += 1
        if _worse(hs[c], hi[c], s, d):
            hs[j] = hs[c]
            hi[j] = hi[c]
            j = c
        else:
            break
    hs[j] = s
    hi[j] = d


@njit(cache=True, nogil=True)
def _heap_push(hs, hi, size, k, s, d):  # pragma: no cover - compiled
    """Offer hit (s, d) to a min-heap (root = worst) of at most k hits; returns the new size."""
    if size < k:
        j = size
        size += 1
        while j > 0:
            parent = (j - 1) >> 1
            if _worse(s, d, hs[parent], hi[parent]):
                hs[j] = hs[parent]
                hi[j] = hi[parent]
                j = parent
            else:
                break
        hs[j] = s
        hi[j] = d
        return size
    if not _worse(hs[0], hi[0], s, d):
        return size
    _sift_down(hs, hi, size, s, d)
    return size


@njit(cache=True, nogil=True)
def _heap_pop(hs, hi, size):  # pragma: no cover - compiled
    """Remove the root (worst hit) of a heap of ``size`` hits; returns the new size."""
    size -= 1
    if size > 0:  # the last hit takes the root's place
        _sift_down(hs, hi, size, hs[size], hi[size])
    return size


@njit(cache=True, nogil=True)
def _top_into(vals, ids, n, hs, hi):  # pragma: no cover - compiled
    """The ``len(hs)`` best hits ``(vals[j], ids[j])``, j < n (ties: lower id), into heap arrays; returns how many."""
    kk = hs.shape[0]
    size = 0
    for j in range(n):
        s = vals[j]
        d = ids[j]
        if size == kk and not _worse(hs[0], hi[0], s, d):
            continue
        size = _heap_push(hs, hi, size, kk, s, d)
    return size


@njit(cache=True, nogil=True)
def _bit_rank(b_words, b_rank, base, d):  # pragma: no cover - compiled
    """Rank of document d in a presence bitmap (its offset in the posting list), or -1 when absent."""
    w = d >> 6
    word = b_words[base + w]
    bit = np.uint64(d & 63)
    if (word >> bit) & np.uint64(1) == np.uint64(0):
        return -1
    return b_rank[base + w] + _popcount(word & ((np.uint64(1) << bit) - np.uint64(1)))


@njit(cache=True, nogil=True)
def _lower_bound(t_docs, lo, hi, d):  # pragma: no cover - compiled
    """First position in ``t_docs[lo:hi]`` (sorted) holding a doc id >= d (``hi`` if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if t_docs[mid] < d:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _tighten(
    cval, cand, n, k, terms, weights, start, t_ptr, t_docs, t_imp, b_slot, b_words, b_rank, n_words, ths, thi
):  # pragma: no cover - compiled
    """A lower bound of the final k-th score: the best partial scores ``cval[:n]`` (of ``cand[:n]``), completed.

    Completing adds the contributions of ``terms[start:]`` in order, exactly as the main loop does, so each value
    is the final score of a distinct document and the k-th largest of them bounds the final k-th score.
    """
    size = _top_into(cval, cand, n, ths, thi)
    m = terms.shape[0]
    done = np.empty(size, np.float32)
    for j in range(size):
        d = thi[j]
        s = ths[j]
        for i in range(start, m):
            t = terms[i]
            p0 = t_ptr[t]
            slot = b_slot[t]
            if slot >= 0:
                r = _bit_rank(b_words, b_rank, slot * n_words, d)
                if r >= 0:
                    s += weights[i] * t_imp[p0 + r]
            else:
                p1 = t_ptr[t + 1]
                p = _lower_bound(t_docs, p0, p1, d)
                if p < p1 and t_docs[p] == d:
                    s += weights[i] * t_imp[p]
        done[j] = s
    done.sort()
    return np.float64(done[size - k])


@njit(cache=True, nogil=True)
def _query_scratch(longest, k):  # pragma: no cover - compiled
    """Per-query arrays of :func:`_search_one` for queries of up to ``longest`` terms and k hits."""
    return (
        np.empty(longest, np.int64),  # lens
        np.empty(longest, np.int64),  # keys
        np.empty(longest, np.int64),  # order
        np.empty(longest, np.int64),  # terms
        np.empty(longest + 1, np.int64),  # rest_len
        np.empty(longest, np.float64),  # ub
        np.empty(longest + 1, np.float64),  # rest
        np.empty(longest, np.float32),  # weights
        np.empty(k, np.int64),  # zeros
        np.empty(k, np.int64),  # merged_i
        np.empty(k, np.float32),  # merged_s
    )


@njit(cache=True, nogil=True)
def _stable_order(keys, m, order):  # pragma: no cover - compiled
    """``order[:m]`` = the stable ascending argsort of ``keys[:m]`` (the permutation of a mergesort argsort):
    insertion sort for the usual short queries, which saves the allocations of a sort."""
    if m > 24:
        order[:m] = np.argsort(keys[:m], kind="mergesort")
        return
    for i in range(m):
        o = i
        key = keys[i]
        j = i - 1
        while j >= 0 and keys[order[j]] > key:
            order[j + 1] = order[j]
            j -= 1
        order[j + 1] = o


#: Documents per window of :func:`_search_windows` (a multiple of 64: window ends fall on bitmap words).
WINDOW = 4096


@njit(cache=True, nogil=True)
def _search_windows(
    terms,
    weights,
    rest,
    n_docs,
    k,
    t_ptr,
    t_docs,
    t_imp,
    b_slot,
    b_words,
    b_rank,
    n_words,
    win,
    wtouched,
    cand,
    cval,
    hs,
    hi,
    slack,
    floor,
):  # pragma: no cover - compiled
    """Top-k of a query with long lists, window by window of ``WINDOW`` documents; returns the number of hits kept.

    Within a window the lists are added term by term in summation order into the small, cache-resident ``win``
    (window-relative; every contribution is positive, so ``win[j] == 0`` means unseen) and, once no unseen
    document can reach theta (the heap's k-th score), only the window's candidates that still can are completed
    by lookups (presence bitmap, else binary search in the list's window range). Each document's score is the
    same float32 sum from 0 in the same order as in :func:`_search_one`'s term-at-a-time path, so the scores are
    bit-identical; the heap gets every matching document that may reach theta, so the top k is the same.

    Only documents scoring above ``floor`` (``-inf``: no floor) enter the heap; theta starts at it.
    """
    m = terms.shape[0]
    lo = np.empty(m, np.int64)
    hi_ = np.empty(m, np.int64)
    for i in range(m):
        hi_[i] = t_ptr[terms[i]]
    theta = floor
    size = 0
    n_win = win.shape[0]
    for wstart in range(0, n_docs, n_win):
        wend = min(wstart + n_win, n_docs)
        for i in range(m):
            t = terms[i]
            p1 = t_ptr[t + 1]
            a = hi_[i]
            b = p1
            if wend < n_docs:
                slot = b_slot[t]
                if slot >= 0:
                    b = t_ptr[t] + b_rank[slot * n_words + (wend >> 6)]
                else:
                    # Gallop from the window's start: short lists cross few windows' worth of postings.
                    step = 1
                    while a + step < p1 and t_docs[a + step - 1] < wend:
                        step *= 2
                    b = _lower_bound(t_docs, a + (step >> 1), min(a + step, p1), wend)
            lo[i] = a
            hi_[i] = b
        nt = 0
        nc = 0
        cand_mode = False
        for i in range(m):
            w = weights[i]
            if not cand_mode and rest[i] * slack < theta:
                # No unseen document of this window can reach theta any more: keep the candidates that can.
                lim = theta / slack - rest[i]
                for j in range(nt):
                    x = wtouched[j]
                    v = win[x]
                    cand[nc] = x
                    cval[nc] = v
                    nc += v >= lim
                    win[x] = 0.0
                cand_mode = True
            if not cand_mode:
                for p in range(lo[i], hi_[i]):
                    x = t_docs[p] - wstart
                    v = win[x]
                    wtouched[nt] = x
                    nt += v == 0
                    win[x] = v + w * t_imp[p]
                continue
            if nc == 0:
                break
            after = rest[i + 1]
            t = terms[i]
            slot = b_slot[t]
            keep = 0
            if slot >= 0:
                # Branch-free: an absent term adds exactly 0 (see the candidate mode of _search_one).
                base = slot * n_words
                p0 = t_ptr[t]
                last = t_ptr[t + 1] - 1
                for j in range(nc):
                    d = cand[j] + wstart
                    word = b_words[base + (d >> 6)]
                    bit = np.uint64(d & 63)
                    present = (word >> bit) & np.uint64(1)
                    p = p0 + b_rank[base + (d >> 6)] + _popcount(word & ((np.uint64(1) << bit) - np.uint64(1)))
                    s = cval[j] + (w * t_imp[min(p, last)]) * np.float32(present)
                    ok = (s + after) * slack >= theta
                    cand[keep] = cand[j]
                    cval[keep] = s
                    keep += ok
            else:
                for j in range(nc):
                    d = cand[j] + wstart
                    p = _lower_bound(t_docs, lo[i], hi_[i], d)
                    s = cval[j]
                    if p < hi_[i] and t_docs[p] == d:
                        s += w * t_imp[p]
                    ok = (s + after) * slack >= theta
                    cand[keep] = cand[j]
                    cval[keep] = s
                    keep += ok
            nc = keep
        if cand_mode:
            for j in range(nc):
                v = cval[j]
                d = wstart + cand[j]
                if v > floor and (size < k or _worse(hs[0], hi[0], v, d)):
                    size = _heap_push(hs, hi, size, k, v, d)
        else:
            for j in range(nt):
                x = wtouched[j]
                v = win[x]
                win[x] = 0.0
                d = wstart + x
                if v > floor and (size < k or _worse(hs[0], hi[0], v, d)):
                    size = _heap_push(hs, hi, size, k, v, d)
        if size == k and hs[0] > theta:
            theta = np.float64(hs[0])
    return size


@njit(cache=True, nogil=True)
def _search_one(
    q_terms,
    q_w,
    n_docs,
    k,
    prune,
    floor,
    t_ptr,
    t_docs,
    t_imp,
    t_max,
    t_min,
    b_slot,
    b_words,
    b_rank,
    t_order,
    acc,
    flag,
    touched,
    cand,
    cval,
    hs,
    hi,
    ths,
    thi,
    qs,
    out_i,
    out_s,
):  # pragma: no cover - compiled
    """Top-k of one query into ``out_i``/``out_s`` (length k, best first). Scratch arrays are left clean.

    ``qs`` (:func:`_query_scratch`) holds the per-query arrays, allocated once per batch: a small shard's search is
    mostly such fixed costs per question.

    A ``floor`` > 0 (used only when pruning) keeps only documents scoring above it: fewer than k of them leave the
    rest of the row at index -1, score -inf; documents matching no term (score 0) are then never merged in. Any
    other floor is no floor.

    ``flag[d]``: 0 unseen, 1 scored (in ``touched``), 2 transiently while a short list is scanned in candidate mode.
    """
    m = q_terms.shape[0]
    n_words = (n_docs + 63) >> 6
    # Fixed summation order: shortest posting list first (ties: term id), in both the pruned and exhaustive paths;
    # the lengths are ``t_order``'s (a shard of a sharded index: the whole corpus's, so it sums as the single index).
    lens, keys, order, terms, rest_len, ub, rest, weights, zeros, merged_i, merged_s = qs
    nonneg = True
    positive = True  # every contribution > 0 (as the windowed path needs)
    n_long = 0  # terms with a presence bitmap
    for i in range(m):
        t = q_terms[i]
        w = q_w[i]
        lens[i] = t_ptr[t + 1] - t_ptr[t]
        keys[i] = t_order[t]
        a = w * t_max[t]
        c = w * t_min[t]
        ub[i] = max(a, c)
        if min(a, c) < 0:
            nonneg = False
        if not c > 0:
            positive = False
        n_long += b_slot[t] >= 0
    _stable_order(keys, m, order)
    for i in range(m):
        terms[i] = q_terms[order[i]]
        weights[i] = q_w[order[i]]
    rest[m] = 0.0
    rest_len[m] = 0  # postings in lists i..
    for i in range(m - 1, -1, -1):
        rest[i] = rest[i + 1] + ub[order[i]]
        rest_len[i] = rest_len[i + 1] + lens[order[i]]
    kk = ths.shape[0]
    prune = prune and nonneg
    # A floor is a threshold every kept document must beat: pruning against it is exact as against theta (the
    # strict tests below keep every document that may reach it, ties included; the final selection drops those
    # that do not beat it).
    floored = prune and floor > 0
    if not floored:
        floor = -np.inf
    # Relative slack covering float32 rounding of m additions (each at most 2**-24 relative).
    slack = 1.0 + (m + 4) * 2.0**-22
    if prune and positive and n_long > 1:
        # Two lists or more in at least 1/BITMAP_DIVISOR of the documents each: window by window, the scattered
        # additions stay in cache and the long lists are looked up only for the few candidates (with one long list
        # the term-at-a-time path below is as fast: measured). ``acc[:WINDOW]`` (clean, and left
        # clean) is the window; ``touched``, ``cand`` and ``cval`` its scratch. With fewer than k matching
        # documents (the zero-score merge below needs the flags) the term-at-a-time path runs instead.
        win = acc[: min(WINDOW, n_docs)]
        count = _search_windows(
            terms[:m],
            weights[:m],
            rest,
            n_docs,
            k,
            t_ptr,
            t_docs,
            t_imp,
            b_slot,
            b_words,
            b_rank,
            n_words,
            win,
            touched,
            cand,
            cval,
            hs,
            hi,
            slack,
            floor,
        )
        if count == k or floored:
            for j in range(count, k):
                out_i[j] = -1
                out_s[j] = -np.inf
            size = count
            while size > 0:
                out_s[size - 1] = hs[0]
                out_i[size - 1] = hi[0]
                size = _heap_pop(hs, hi, size)
            return

    nt = 0
    nc = 0
    theta = floor
    cand_mode = False
    declined = False
    for i in range(m):
        t = terms[i]
        w = weights[i]
        p0 = t_ptr[t]
        p1 = t_ptr[t + 1]
        length = p1 - p0
        if length == 0:
            continue
        after = rest[i + 1]
        if prune and not cand_mode:
            # Tightening costs a pass over the partial scores and kk searches per remaining list: worth it before
            # a long list, while small next to the postings still to come, and once theta is known, only when the
            # remaining bounds come near it (theta is then usually close to the final k-th score already).
            if (
                nt >= k
                and rest[i] * slack >= theta
                and length >= 128
                and 2 * length >= nt
                and nt + 16 * kk * (m - i) <= rest_len[i]
                and (theta == -np.inf or rest[i] <= 1.1 * theta)
            ):
                # Gather the partial scores once (sequential from here on), then bound the k-th final score.
                for j in range(nt):
                    d = touched[j]
                    cand[j] = d
                    cval[j] = acc[d]
                nc = nt
                bound = _tighten(
                    cval,
                    cand,
                    nc,
                    k,
                    terms[:m],
                    weights[:m],
                    i,
                    t_ptr,
                    t_docs,
                    t_imp,
                    b_slot,
                    b_words,
                    b_rank,
                    n_words,
                    ths,
                    thi,
                )
                if bound > theta:
                    theta = bound
            if rest[i] * slack < theta and not declined:
                # No unseen document can reach theta any more: from now on only the candidates that still can
                # are completed, their partial scores kept in ``cval`` beside ``cand`` -- unless there are so many
                # that passing over them once per remaining list costs more than the lists themselves (long
                # queries); the lists are then accumulated as before, and admit nothing new.
                if nc != nt:
                    for j in range(nt):
                        d = touched[j]
                        cand[j] = d
                        cval[j] = acc[d]
                keep = 0
                for j in range(nt):
                    s = cval[j]
                    ok = (s + rest[i]) * slack >= theta
                    cand[keep] = cand[j]
                    cval[keep] = s
                    keep += ok
                nc = keep
                if 2 * nc * (m - i) <= rest_len[i]:
                    cand_mode = True
                else:
                    declined = True
        if not cand_mode:
            # Branch-free (so that the scattered accesses of consecutive postings overlap). Unseen documents have
            # acc 0, so adding a contribution to them is exact; ``touched`` has one spare slot for the blind write.
            # A new document must be able to reach theta with its contribution and the later bounds.
            need = theta / slack - after
            if need <= w * t_min[t]:
                # Every posting qualifies.
                for p in range(p0, p1):
                    d = t_docs[p]
                    acc[d] += w * t_imp[p]
                    touched[nt] = d
                    nt += flag[d] == 0
                    flag[d] = 1
            elif need > ub[order[i]]:
                # None does: only documents already scored are updated.
                for p in range(p0, p1):
                    d = t_docs[p]
                    acc[d] += (w * t_imp[p]) * np.float32(flag[d])
            else:
                for p in range(p0, p1):
                    d = t_docs[p]
                    c = w * t_imp[p]
                    seen = flag[d] != 0
                    ok = seen or c >= need
                    acc[d] += c * np.float32(ok)
                    touched[nt] = d
                    nt += ok and not seen
                    flag[d] = ok
            nc = 0
            continue
        # Candidate mode: add this term to the surviving candidates, dropping those that can no longer reach theta.
        if nc == 0:
            break
        slot = b_slot[t]
        if slot >= 0:
            # Branch-free so that the (cache-missing) impact loads of consecutive candidates overlap: an absent
            # term adds exactly 0, and every candidate is written back, advancing only when it survives.
            base = slot * n_words
            last = p1 - 1
            keep = 0
            for j in range(nc):
                d = cand[j]
                word = b_words[base + (d >> 6)]
                bit = np.uint64(d & 63)
                present = (word >> bit) & np.uint64(1)
                p = p0 + b_rank[base + (d >> 6)] + _popcount(word & ((np.uint64(1) << bit) - np.uint64(1)))
                x = w * t_imp[min(p, last)]
                s = cval[j] + x * np.float32(present)
                ok = (s + after) * slack >= theta
                cand[keep] = d
                cval[keep] = s
                keep += ok
        elif nc * 2.0 * (np.log2(length) + 1.0) < length:
            keep = 0
            for j in range(nc):
                d = cand[j]
                p = _lower_bound(t_docs, p0, p1, d)
                s = cval[j]
                if p < p1 and t_docs[p] == d:
                    s += w * t_imp[p]
                ok = (s + after) * slack >= theta
                cand[keep] = d
                cval[keep] = s
                keep += ok
        else:
            # Many candidates, short list: scan it, through the dense accumulator.
            for j in range(nc):
                d = cand[j]
                acc[d] = cval[j]
                flag[d] = 2
            for p in range(p0, p1):
                d = t_docs[p]
                if flag[d] == 2:
                    acc[d] += w * t_imp[p]
            keep = 0
            for j in range(nc):
                d = cand[j]
                s = acc[d]
                flag[d] = 1
                ok = (s + after) * slack >= theta
                cand[keep] = d
                cval[keep] = s
                keep += ok
        nc = keep
        if nc > 4 * k:
            # Partial scores are lower bounds of final scores: raise theta with the candidates' k-th best.
            size = _top_into(cval, cand, nc, hs, hi)
            if size == k and hs[0] > theta:
                theta = np.float64(hs[0])

    # Select the top k among the scored documents (above the floor).
    if not cand_mode:
        for j in range(nt):
            d = touched[j]
            cand[j] = d
            cval[j] = acc[d]
        nc = nt
    if floored:
        keep = 0
        for j in range(nc):
            s = cval[j]
            cand[keep] = cand[j]
            cval[keep] = s
            keep += s > floor
        nc = keep
    count = _top_into(cval, cand, nc, hs, hi)
    for j in range(count, k):
        out_i[j] = -1
        out_s[j] = -np.inf
    size = count
    while size > 0:
        out_s[size - 1] = hs[0]
        out_i[size - 1] = hi[0]
        size = _heap_pop(hs, hi, size)
    if not floored and (count < k or out_s[k - 1] <= 0):
        # Documents that match no query term score 0: merge the first ones (by index) into the ranking.
        nz = 0
        for d in range(n_docs):
            if nz == k:
                break
            if flag[d] == 0:
                zeros[nz] = d
                nz += 1
        total = min(k, count + nz)
        ia = 0
        iz = 0
        for j in range(total):
            if iz >= nz or (ia < count and not _worse(out_s[ia], out_i[ia], np.float32(0.0), zeros[iz])):
                merged_i[j] = out_i[ia]
                merged_s[j] = out_s[ia]
                ia += 1
            else:
                merged_i[j] = zeros[iz]
                merged_s[j] = 0.0
                iz += 1
        for j in range(total):
            out_i[j] = merged_i[j]
            out_s[j] = merged_s[j]

    for j in range(nt):
        d = touched[j]
        acc[d] = 0.0
        flag[d] = 0


def new_scratch(n_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Clean scratch arrays ``(acc, flag, touched, cand, cval)`` for :func:`search_batch_scratch` over ``n_docs``
    documents (17 bytes per document). A search leaves ``acc`` and ``flag`` all zero again, so one set can serve
    any number of searches, one at a time."""
    return (
        np.zeros(n_docs, np.float32),
        np.zeros(n_docs, np.uint8),
        np.empty(n_docs + 1, np.int32),
        np.empty(n_docs + 1, np.int32),
        np.empty(n_docs + 1, np.float32),
    )


@njit(cache=True, nogil=True)
def search_batch_scratch(
    t_ptr,
    t_docs,
    t_imp,
    t_max,
    t_min,
    b_slot,
    b_words,
    b_rank,
    t_order,
    n_docs,
    q_ptr,
    q_terms,
    q_w,
    q_const,
    k,
    prune,
    floor,
    out_i,
    out_s,
    acc,
    flag,
    touched,
    cand,
    cval,
):  # pragma: no cover - compiled
    """Top-k of queries ``q_ptr`` (CSR over ``q_terms``/``q_w``) into ``out_i``/``out_s`` (Q × k).

    ``q_const[q]`` is added to every document's score of query q (BM25+'s delta terms): it changes no ranking.
    ``prune=False`` scores every matching document (the exhaustive reference; same float32 sums).

    ``floor`` (float64, one per query, or empty for none) seeds the pruning of a shard of a sharded index with the
    k-th best score of the shards searched before it: with ``floor[q] > 0`` (and pruning) query q's row holds only
    the documents scoring above it (before ``q_const``), best first, the rest of the row index -1 and score -inf.
    Documents scoring exactly the floor are dropped: they come after k earlier documents scoring at least as much,
    and lose the tie to them. A floor <= 0 (or -inf) is no floor: the usual top k, documents scoring 0 included.

    The scratch arrays (``acc`` ... ``cval``, :func:`new_scratch`) are the caller's and left clean on return.
    Allocating the n_docs-sized accumulator for every call is what a one-question search would mostly pay for on a
    large corpus (page faults of fresh zeroed memory): a retriever keeps a set and passes it to each call.
    """
    n_queries = q_ptr.shape[0] - 1
    hs = np.empty(k, np.float32)
    hi = np.empty(k, np.int64)
    kk = min(max(min(TIGHTEN_FACTOR * k, 128), k), n_docs)
    ths = np.empty(kk, np.float32)
    thi = np.empty(kk, np.int64)
    floored = floor.shape[0] > 0
    longest = 0
    for q in range(n_queries):
        longest = max(longest, q_ptr[q + 1] - q_ptr[q])
    qs = _query_scratch(longest, k)
    for q in range(n_queries):
        a = q_ptr[q]
        e = q_ptr[q + 1]
        _search_one(
            q_terms[a:e],
            q_w[a:e],
            n_docs,
            k,
            prune,
            floor[q] if floored else -np.inf,
            t_ptr,
            t_docs,
            t_imp,
            t_max,
            t_min,
            b_slot,
            b_words,
            b_rank,
            t_order,
            acc,
            flag,
            touched,
            cand,
            cval,
            hs,
            hi,
            ths,
            thi,
            qs,
            out_i[q],
            out_s[q],
        )
        c = q_const[q]
        if c != 0:
            n = k  # the hits (a floor may leave fewer; the -inf padding stays)
            while n > 0 and out_i[q, n - 1] < 0:
                n -= 1
            for j in range(n):
                out_s[q, j] += c
            # Adding c may round distinct scores to equal ones: restore index order inside runs of ties.
            a = 0
            while a < n:
                b = a + 1
                while b < n and out_s[q, b] == out_s[q, a]:
                    b += 1
                if b - a > 1:
                    out_i[q, a:b] = np.sort(out_i[q, a:b])
                a = b


# --------------------------------------------------------------------------------------------------------------
# Scoring given documents (every document, or candidate rows): the scores search gives, bit for bit
# --------------------------------------------------------------------------------------------------------------


@njit(cache=True, nogil=True)
def _summation_order(q_terms, q_w, t_order):  # pragma: no cover - compiled
    """A query's terms and weights in :func:`_search_one`'s summation order (shortest posting list first, ties:
    term id, by the same stable sort), so that scores summed in this order are bit-identical to search's."""
    m = q_terms.shape[0]
    lens = np.empty(m, np.int64)
    for i in range(m):
        t = q_terms[i]
        lens[i] = t_order[t]
    order = np.argsort(lens, kind="mergesort")
    terms = np.empty(m, np.int64)
    weights = np.empty(m, np.float32)
    for i in range(m):
        terms[i] = q_terms[order[i]]
        weights[i] = q_w[order[i]]
    return terms, weights


@njit(cache=True, nogil=True)
def _accumulate(terms, weights, t_ptr, t_docs, t_imp, acc):  # pragma: no cover - compiled
    """Add every posting's contribution of ``terms`` (in order) to the float32 accumulator ``acc``."""
    for i in range(terms.shape[0]):
        t = terms[i]
        w = weights[i]
        for p in range(t_ptr[t], t_ptr[t + 1]):
            acc[t_docs[p]] += w * t_imp[p]


@njit(cache=True, nogil=True)
def score_all_batch(
    t_ptr, t_docs, t_imp, t_order, n_docs, q_ptr, q_terms, q_w, q_const, out
):  # pragma: no cover - compiled
    """Every document's score of queries ``q_ptr`` (CSR over ``q_terms``/``q_w``) into ``out`` (Q × n_docs).

    The float32 sums of :func:`search_batch_scratch` (same order, from 0), then ``q_const[q]`` added to every
    document, those matching no term included (they score 0 + const, as search merges them in).
    """
    n_queries = q_ptr.shape[0] - 1
    for q in range(n_queries):
        a = q_ptr[q]
        e = q_ptr[q + 1]
        row = out[q]
        row[:] = 0.0
        terms, weights = _summation_order(q_terms[a:e], q_w[a:e], t_order)
        _accumulate(terms, weights, t_ptr, t_docs, t_imp, row)
        c = q_const[q]
        if c != 0:
            for d in range(n_docs):
                row[d] += c


@njit(cache=True, nogil=True)
def score_candidates_batch(
    t_ptr, t_docs, t_imp, t_order, n_docs, q_ptr, q_terms, q_w, q_const, candidates, out
):  # pragma: no cover - compiled
    """Scores of documents ``candidates[q, j]`` of queries ``q_ptr`` into ``out[q, j]`` (both Q × C).

    Each query is accumulated into one reused dense float32 accumulator exactly as in :func:`score_all_batch`,
    read at its candidates (repeats allowed), then reset only where its postings touched it.
    """
    n_queries = q_ptr.shape[0] - 1
    n_cand = candidates.shape[1]
    if n_cand == 0:
        return
    acc = np.zeros(n_docs, np.float32)
    for q in range(n_queries):
        a = q_ptr[q]
        e = q_ptr[q + 1]
        terms, weights = _summation_order(q_terms[a:e], q_w[a:e], t_order)
        _accumulate(terms, weights, t_ptr, t_docs, t_imp, acc)
        c = q_const[q]
        if c != 0:
            for j in range(n_cand):
                out[q, j] = acc[candidates[q, j]] + c
        else:
            for j in range(n_cand):
                out[q, j] = acc[candidates[q, j]]
        for i in range(terms.shape[0]):
            t = terms[i]
            for p in range(t_ptr[t], t_ptr[t + 1]):
                acc[t_docs[p]] = 0.0
