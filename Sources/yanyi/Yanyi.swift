// The yanyi executable: one command per file; the only place that reads argv or exits.
import ArgumentParser

@main
struct Yanyi: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "yanyi",
        abstract: "Chat with and cosplay characters played by local LLMs (int8, LoRA hot-swap).",
        subcommands: [ChatCommand.self, Inspect.self, Tokenize.self, Logits.self, Generate.self, Eval.self, Bench.self, CacheCommand.self, SessionsCommand.self, CardCommand.self, ServeCommand.self],
        defaultSubcommand: ChatCommand.self
    )
}
