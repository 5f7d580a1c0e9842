/// Stop strings matched on the decoded reply (CuteGPT's `<end>` is three ordinary tokens, so no id
/// check can see it). Text arrives in deltas; a tail that could still become a stop string is held
/// back, so what was emitted never has to be taken back. On a match the reply ends just before it.
public struct StopStringMatcher: Sendable {
    public let stops: [String]
    private var held = ""              // decoded, not yet emitted
    public private(set) var emitted = ""

    public init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Adds decoded text; returns what may be shown now and the stop string found, if any (then the
    /// returned text is everything before it, and the reply is over).
    public mutating func push(_ text: String) -> (text: String, stop: String?) {
        guard !stops.isEmpty else {
            emitted += text
            return (text, nil)
        }
        held += text
        // The earliest match. It lies wholly in `held`: while a stop string is incomplete, the text
        // from its start on is a prefix of it, and the longest such tail is always held back.
        var first: (Range<String.Index>, String)?
        for s in stops {
            if let r = held.range(of: s), first == nil || r.lowerBound < first!.0.lowerBound { first = (r, s) }
        }
        if let (r, s) = first {
            let out = String(held[..<r.lowerBound])
            emitted += out
            held = ""
            return (out, s)
        }
        // hold back the longest tail that is a proper prefix of some stop string
        var keep = 0
        for s in stops {
            var n = min(s.count - 1, held.count)
            while n > keep {
                if held.hasSuffix(s.prefix(n)) { keep = n; break }
                n -= 1
            }
        }
        let cut = held.index(held.endIndex, offsetBy: -keep)
        let out = String(held[..<cut])
        held = String(held[cut...])
        emitted += out
        return (out, nil)
    }

    /// Releases whatever is held back (the reply ended another way).
    public mutating func flush() -> String {
        let out = held
        held = ""
        emitted += out
        return out
    }
}
