import Engine
import Foundation

// The one seam between the conversation runtime and whatever produces tokens: a rendered prompt,
// an adapter set and settings go in; text deltas and a finish come out. The local int8 engine
// (LocalEngine) and the canned one (CannedEngine) implement it; a remote OpenAI-compatible engine
// can later stand in without touching the conversation rules.

/// What the status line and budget need to know about a loaded base.
public struct EngineInfo: Sendable, Equatable {
    /// Folder name of the base (or "fake").
    public var name: String
    /// "int8", "f32", or "canned".
    public var precision: String
    public var contextLength: Int
    /// "ChatGLM-6B", "LLaMA", … (for notes).
    public var family: String

    public init(name: String, precision: String, contextLength: Int, family: String) {
        self.name = name
        self.precision = precision
        self.contextLength = contextLength
        self.family = family
    }
}

/// An adapter as the engine applies it: its resolved folder and multiplier.
public struct AdapterSetting: Sendable, Equatable {
    public var path: String
    public var scale: Float

    public init(path: String, scale: Float) {
        self.path = path
        self.scale = scale
    }
}

/// One generation.
public struct EngineRequest: Sendable {
    /// The prompt as token ids (the engine's tokenizer made them: prompts stay byte-exact).
    public var promptIDs: [Int32]
    /// generation_config.json < persona < user, with the turn's stop ids and strings; max_new_tokens set.
    public var parameters: GenerationParameters
    /// Who is speaking (logs, metrics, the canned engine's lines); never part of the prompt.
    public var persona: String?
    /// The prompt ends inside a reply being continued.
    public var continuing: Bool
    /// Set: the engine reports each generated token's logprob and `logprobs.top` alternatives
    /// into it as the token comes (before the text it completes reaches `onDelta`). nil: off.
    public var logprobs: LogprobLog?

    public init(promptIDs: [Int32], parameters: GenerationParameters, persona: String? = nil, continuing: Bool = false,
                logprobs: LogprobLog? = nil) {
        self.promptIDs = promptIDs
        self.parameters = parameters
        self.persona = persona
        self.continuing = continuing
        self.logprobs = logprobs
    }
}

/// How a generation ended.
public struct EngineReply: Sendable {
    /// Raw text (before the template's post-processing; stop strings already cut by the engine).
    public var text: String
    /// nil after a failure.
    public var reason: FinishReason?
    public var stats: GenerationStats?
    public var tokens: [Int32]
    /// A failure mid-reply: `text` is what came before it.
    public var error: ChatError?
    /// With `EngineRequest.logprobs`: one per generated token, in order (see `TokenLogprob`).
    public var logprobs: [TokenLogprob]
    /// The stop string that ended it (reason `.stopString`).
    public var stopString: String?

    public init(text: String, reason: FinishReason?, stats: GenerationStats? = nil, tokens: [Int32] = [], error: ChatError? = nil,
                logprobs: [TokenLogprob] = [], stopString: String? = nil) {
        self.text = text
        self.reason = reason
        self.stats = stats
        self.tokens = tokens
        self.error = error
        self.logprobs = logprobs
        self.stopString = stopString
    }
}

/// A token and its logprob as a client sees them: the piece's text and bytes.
public struct PieceLogprob: Sendable, Equatable {
    public var id: Int32
    /// The piece's text; a piece that is not whole UTF-8 (a byte-fallback piece, part of a
    /// character) as OpenAI writes it: `bytes:\xe4\xbd`.
    public var token: String
    public var bytes: [UInt8]
    /// May be −∞ (a token a processor banned).
    public var logprob: Float

    public init(id: Int32, token: String, bytes: [UInt8], logprob: Float) {
        self.id = id
        self.token = token
        self.bytes = bytes
        self.logprob = logprob
    }

    public init(id: Int32, logprob: Float, tokenizer: any Tokenizer) {
        let b = tokenizer.pieceBytes(id)
        let text = String(validating: b, as: UTF8.self) ?? "bytes:" + b.map { "\\x" + String($0, radix: 16).leftPadded(2) }.joined()
        self.init(id: id, token: text, bytes: b, logprob: logprob)
    }
}

/// One generated token with the most likely alternatives at its step, most likely first.
public struct RenderedLogprob: Sendable, Equatable {
    public var chosen: PieceLogprob
    public var top: [PieceLogprob]

    public init(chosen: PieceLogprob, top: [PieceLogprob]) {
        self.chosen = chosen
        self.top = top
    }
}

/// Where an engine reports logprobs as it generates, rendered with its tokenizer on its own
/// thread; a streaming reader takes what has come since it last looked.
public final class LogprobLog: @unchecked Sendable {
    /// Alternatives per token (0–20).
    public let top: Int
    private let tokenizer: any Tokenizer
    private let lock = NSLock()
    private var entries: [RenderedLogprob] = []
    private var taken = 0

    public init(top: Int, tokenizer: any Tokenizer) {
        self.top = top
        self.tokenizer = tokenizer
    }

    /// Called by the engine for each generated token.
    public func append(_ t: TokenLogprob) {
        let r = RenderedLogprob(chosen: PieceLogprob(id: t.id, logprob: t.logprob, tokenizer: tokenizer),
                                top: t.top.map { PieceLogprob(id: $0.id, logprob: $0.logprob, tokenizer: tokenizer) })
        lock.withLock { entries.append(r) }
    }

    /// Every token so far.
    public var all: [RenderedLogprob] { lock.withLock { entries } }

    /// The tokens not taken before.
    public func take() -> [RenderedLogprob] {
        lock.withLock {
            let out = Array(entries[taken...])
            taken = entries.count
            return out
        }
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// A loaded base model with its adapters, as the runtime drives it. Calls come from one thread
/// at a time (the runtime's), except `cancel`, which may come from any thread.
public protocol ReplyEngine: AnyObject, Sendable {
    var info: EngineInfo { get }
    /// Tokenizes rendered prompts for the budget and the request.
    var tokenizer: any Tokenizer { get }
    /// generation_config.json (and the EOS ids of config.json / the tokenizer).
    var defaults: GenerationParameters { get }
    /// Reads an adapter folder and checks it against this base; returns a one-line summary
    /// ("24 modules, r 8"). Throws a one-line error naming the folder.
    func prepareAdapter(_ path: String) throws(ChatError) -> String
    /// The adapters applied from the next generation on (each prepared first), in order.
    func setAdapters(_ list: [AdapterSetting]) throws(ChatError)
    /// Runs one generation on the caller's thread, `onDelta` seeing text as it comes. A set
    /// `cancelled` flag ends it before its next token (checked before the first one too).
    func generate(_ request: EngineRequest, cancelled: CancellationFlag, onDelta: (String) -> Void) -> EngineReply
    /// Makes the generation running now notice its flag at once (any thread).
    func interrupt()
}

/// An engine whose model can run several requests in one forward per step (Serve's batch
/// scheduler): each request a sequence of its own `BatchDecoder`, under its own adapter stack.
public protocol BatchingEngine: ReplyEngine {
    /// A decoder over this engine's model and tokenizer (drive it from one thread).
    func makeBatchDecoder() -> BatchDecoder
    /// `list` as a per-sequence adapter stack (each adapter read and checked once, as `setAdapters`
    /// does); the model's active set is not touched.
    func adapterStack(_ list: [AdapterSetting]) throws(ChatError) -> LoRAStack
}

/// Loads bases. `progress` gets 0–1 and an estimate of the seconds left (nil while unknown).
public protocol ModelHost: Sendable {
    func load(_ path: String, progress: @escaping @Sendable (Double, Double?) -> Void) throws(ChatError) -> any ReplyEngine
}
