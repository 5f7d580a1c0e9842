/// One sequence: the tokens fed so far and the keys/values they produced, plus a few snapshots of
/// keys/values computed under other adapter sets, so that switching back to a recent persona
/// re-runs only what was said since (not the whole history).
public final class ModelSession: @unchecked Sendable {
    public let cache: KVCache
    public internal(set) var tokens: [Int32] = []
    /// LoRAStack.signature of the adapters the cached keys/values were computed under.
    public internal(set) var adapterSignature = ""
    /// How many snapshots (one per adapter set) to keep; each costs its tokens' keys and values
    /// (`snapshotBytes`). 0 turns snapshots off.
    public var snapshotLimit = 2 { didSet { trimSnapshots() } }
    /// What the last adapter change did: tokens restored from a snapshot and tokens re-run.
    public private(set) var lastSwitch: (restored: Int, rerun: Int)?

    struct Snapshot {
        var signature: String
        var tokens: [Int32]
        var cache: KVCache        // capacity = tokens.count
    }
    private var snapshots: [Snapshot] = []   // least recently used first

    public init(cache: KVCache) { self.cache = cache }

    public var count: Int { tokens.count }
    public var capacity: Int { cache.capacity }
    public var snapshotCount: Int { snapshots.count }
    public var snapshotBytes: Int { snapshots.reduce(0) { $0 + $1.cache.byteSize } }

    /// Forgets everything (the cache memory stays allocated for reuse; snapshots stay).
    public func reset() { tokens.removeAll(keepingCapacity: true) }

    /// Keeps the first `n` tokens: their cached keys and values stay valid.
    public func truncate(to n: Int) { if n < tokens.count { tokens.removeLast(tokens.count - n) } }

    /// Drops every snapshot (their memory is freed).
    public func clearSnapshots() { snapshots.removeAll() }

    /// Called by a model's forward before it runs `incoming` under the adapter set `signature`.
    /// Under the same set nothing changes. Under another, the cached keys/values are stale: they are
    /// kept as a snapshot of their own set, the best snapshot of the new set (if any) is restored,
    /// and the session is left holding only valid tokens. Returns the tokens the model must run
    /// next (a suffix of `tokens + incoming`, never shorter than `incoming`).
    /// `reusable(cached, sequence)` says how many leading positions of a snapshot's keys/values
    /// are still right for `sequence` (its longest common prefix for a causal model).
    func align(_ incoming: [Int32], signature: String,
               reusable: (_ cached: [Int32], _ sequence: [Int32]) -> Int) -> [Int32] {
        guard count > 0, adapterSignature != signature else {
            adapterSignature = signature
            return incoming
        }
        let sequence = tokens + incoming
        let held = count
        remember()
        var restored = 0
        if let i = snapshots.lastIndex(where: { $0.signature == signature }) {
            let snap = snapshots.remove(at: i)
            // Only tokens the caller has already fed may come back: it wants logits for `incoming`.
            restored = min(reusable(snap.tokens, sequence), held)
            if restored > 0 { cache.copy(from: snap.cache, positions: restored) }
            snapshots.append(snap)
        }
        tokens = Array(sequence[..<restored])
        adapterSignature = signature
        lastSwitch = (restored, sequence.count - restored)
        return Array(sequence[restored...])
    }

    /// Saves the current keys/values under their adapter set (replacing an older one of that set).
    private func remember() {
        guard snapshotLimit > 0, count > 0 else { return }
        snapshots.removeAll { $0.signature == adapterSignature }
        snapshots.append(Snapshot(signature: adapterSignature, tokens: tokens, cache: cache.prefix(count, capacity: count)))
        trimSnapshots()
    }

    private func trimSnapshots() {
        if snapshots.count > snapshotLimit { snapshots.removeFirst(snapshots.count - snapshotLimit) }
    }
}

/// Length of the common prefix of two token sequences.
func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
    var i = 0
    while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
    return i
}
