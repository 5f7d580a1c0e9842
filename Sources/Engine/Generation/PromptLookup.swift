/// Draft tokens for speculative decoding by prompt lookup (transformers' `prompt_lookup_num_tokens`,
/// llama.cpp's lookup decoding): where the last few tokens occurred earlier in the sequence (the
/// prompt — persona, lore, history — or the reply so far), guess that what followed them follows again.
/// A chat model often quotes names, places and whole phrases it has already seen; each guess that
/// the model then picks itself is a token whose weights were read together with the others.
public struct PromptLookup: Sendable, Equatable {
    /// Most tokens drafted at once.
    public var maxDraft: Int
    /// Longest n-gram looked up first; shorter ones (down to `minNgram`) are tried when it is not found.
    public var maxNgram = 3
    public var minNgram = 1

    public init(maxDraft: Int) { self.maxDraft = maxDraft }

    /// The most draft tokens a setting may ask for: a forward of up to eight tokens reads the int8
    /// weights once (the row kernel), so seven drafts and the token before them cost one read.
    public static let maxTokens = 7

    /// Up to `min(maxDraft, limit)` tokens that followed the latest earlier occurrence of the longest
    /// suffix n-gram of `ids` that occurs earlier; empty when none does.
    public func draft(_ ids: [Int32], limit: Int) -> [Int32] {
        let want = min(maxDraft, limit)
        guard want > 0 else { return [] }
        let end = ids.count
        var n = min(maxNgram, end - 1)
        while n >= minNgram {
            // latest start s < end - n with ids[s..<s+n] == the last n tokens and something after it
            var s = end - n - 1
            while s >= 0 {
                var k = 0
                while k < n && ids[s + k] == ids[end - n + k] { k += 1 }
                if k == n {
                    let from = s + n
                    return Array(ids[from..<min(from + want, end)])
                }
                s -= 1
            }
            n -= 1
        }
        return []
    }
}
