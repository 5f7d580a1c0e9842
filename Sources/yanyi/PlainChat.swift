import Chat
import Engine
import Foundation

/// `yanyi chat --plain`: line-mode chat on stdin/stdout (slash commands: /help), over the same
/// conversation runtime as the TUI. Ctrl-C stops a reply (saved as partial) or, at the prompt, leaves.
func runPlainChat(_ controller: ChatController) -> Never {
    for e in controller.library.errors { FileHandle.standardError.write(Data("warning: \(e)\n".utf8)) }
    controller.onEvent = { e in
        if case .notice(let text) = e { FileHandle.standardOutput.write(Data("· \(text)\n".utf8)) }
    }
    signal(SIGINT, SIG_IGN)
    let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    sigint.setEventHandler { if controller.isBusy { controller.cancel() } else { exit(130) } }
    sigint.resume()
    LineChat(controller: controller, read: { Swift.readLine() },
             write: { FileHandle.standardOutput.write(Data($0.utf8)) }).run()
    WeightCache.finishPending()
    exit(0)
}
