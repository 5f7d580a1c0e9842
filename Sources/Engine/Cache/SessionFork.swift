/// Sessions that branch: a copy of a session (`fork`), a session taking over another's tokens by
/// copying only the positions where they differ (`continue(from:sharing:)`), and the caches of a
/// beam search (`BeamSessions`). Cached keys/values are reached only through KVCache's own
/// `copy`/`prefix`, so a change of storage (paged, a shared read-only prompt) changes KVCache
/// and this file, not the beam code.

extension ModelSession {
    /// A new session holding a copy of this one's tokens and their keys/values; `capacity`
    /// (default: this one's) must hold them.
    public func fork(capacity: Int? = nil) -> ModelSession {
        let cap = capacity ?? self.capacity
        precondition(cap >= count, "fork capacity \(cap) < \(count) tokens held")
        let s = ModelSession(cache: cache.prefix(count, capacity: cap))
        s.tokens = tokens
        s.adapterSignature = adapterSignature
        return s
    }

    /// Makes this session hold exactly `parent`'s tokens, copying keys/values only from position
    /// `shared` on: the first `shared` positions must already be the same in both (the prompt both
    /// were forked from).
    public func `continue`(from parent: ModelSession, sharing shared: Int) {
        guard parent !== self else { return }
        precondition(shared <= count && shared <= parent.count, "shared prefix longer than a session")
        cache.copy(from: parent.cache, positions: shared..<parent.count)
        tokens = parent.tokens
        adapterSignature = parent.adapterSignature
    }
}

/// The KV caches of a beam search: one session per beam, each starting from the prompt that
/// `root` holds. `root` itself serves as one beam and is truncated back to the prompt by
/// `finish()`; the others are forks with `capacity` positions. A step's reorder (beam i continues
/// from old beam parents[i]) moves session objects where it can and copies only generated
/// positions where a parent has several children.
public final class BeamSessions {
    public let root: ModelSession
    public let promptLength: Int
    private var sessions: [ModelSession]

    public init(root: ModelSession, beams: Int, capacity: Int) {
        self.root = root
        promptLength = root.count
        sessions = [root] + (1..<max(beams, 1)).map { _ in root.fork(capacity: capacity) }
    }

    public var count: Int { sessions.count }
    public subscript(beam: Int) -> ModelSession { sessions[beam] }

    /// Beam i continues from old beam `parents[i]`.
    public func reorder(parents: [Int]) {
        precondition(parents.count == sessions.count)
        var taken = [Bool](repeating: false, count: sessions.count)    // old session moved to a child
        var next = [ModelSession?](repeating: nil, count: sessions.count)
        for (i, p) in parents.enumerated() where !taken[p] {
            taken[p] = true
            next[i] = sessions[p]
        }
        var spare = sessions.indices.filter { !taken[$0] }.map { sessions[$0] }
        for (i, p) in parents.enumerated() where next[i] == nil {
            let s = spare.removeLast()
            s.continue(from: sessions[p], sharing: promptLength)
            next[i] = s
        }
        sessions = next.map { $0! }
    }

    /// Back to the prompt: `root` holds it again (its cached prompt positions were never written).
    public func finish() {
        root.truncate(to: promptLength)
    }
}
