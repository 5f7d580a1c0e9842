/// Sessions that branch: a copy of a session (`fork`), a session reading another's cached
/// positions in place (`branch`), a session taking over another's tokens by copying only the
/// positions where they differ (`continue(from:sharing:)`), and the caches of a beam search
/// (`BeamSessions`). Cached keys/values are reached only through KVCache's own
/// `copy`/`prefix`/`sharing`, so a change of storage changes KVCache and this file, not the beam code.

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

    /// A new session holding this one's tokens whose keys/values for them are this session's own,
    /// read in place (KVCache.sharing): it owns only positions count..<capacity. This session must
    /// not rewrite its first `count` positions while the branch lives (appending is fine).
    public func branch(capacity: Int) -> ModelSession {
        precondition(capacity >= count, "branch capacity \(capacity) < \(count) tokens held")
        let s = ModelSession(cache: cache.sharing(count, capacity: capacity))
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

/// The KV caches of a beam search: one session per beam, each a branch of `root` (which holds the
/// prompt) with `capacity` positions. Every beam reads the prompt's keys/values from root's cache,
/// one copy for all of them, and owns only its generated positions; root itself is not run during
/// the search, so the prompt positions the beams read never change under them (a beam whose model
/// must rewrite them, ChatGLM's context growing, takes its own copy first: KVCache.store). A
/// step's reorder (beam i continues from old beam parents[i]) moves session objects where it can
/// and copies only generated positions where a parent has several children.
public final class BeamSessions {
    public let root: ModelSession
    public let promptLength: Int
    private var sessions: [ModelSession]

    public init(root: ModelSession, beams: Int, capacity: Int) {
        self.root = root
        promptLength = root.count
        sessions = (0..<max(beams, 1)).map { _ in root.branch(capacity: capacity) }
    }

    /// Bytes of keys/values the beams hold (root's cache, holding the prompt, is not theirs):
    /// beams × the generated positions' share, whatever the prompt's length.
    public var beamBytes: Int { sessions.reduce(0) { $0 + $1.cache.byteSize } }

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

    /// The search is over: the beams' caches go, root still holds the prompt.
    public func finish() {
        sessions.removeAll()
    }
}
