// Chat: personas, prompt templates per seed system, history policy, sessions and transcripts.
// Built on Engine; knows nothing of keys, terminals or colours. (Filled in by the chat-layer issue.)
import Engine

/// The engine this chat layer drives; re-exported so higher layers name one module.
public enum ChatLayer {
    public static let engineVersion = Engine.version
}
