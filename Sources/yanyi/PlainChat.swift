import Chat
import Engine
import Foundation

/// `yanyi chat --plain`: line-mode chat on stdin/stdout (slash commands: /help). Ctrl-C stops a
/// reply (saved as partial) or, at the prompt, leaves.
func runPlainChat(personas: String, models: String, sessions: String, persona id: String?, resume: String?,
                  threads: Int?, cache: WeightCache?) -> Never {
    let library = PersonaLibrary.load(from: personas)
    for e in library.errors { FileHandle.standardError.write(Data("warning: \(e)\n".utf8)) }
    guard let persona = id.map({ library.persona($0) }) ?? library.personas.first else {
        fail(id.map { "no persona '\($0)' in \(personas)" } ?? "no personas in \(personas)")
    }
    do {
        let store = try SessionStore(directory: sessions)
        let controller = try ChatController(options: .init(modelsRoot: models, weightCache: cache), library: library, store: store,
                                            persona: persona, session: resume.map { id throws(ChatError) in try store.resume(id) },
                                            pool: threads.map { ThreadPool(threads: $0) } ?? ThreadPool())
        signal(SIGINT, SIG_IGN)
        let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        sigint.setEventHandler { if controller.isBusy { controller.cancel() } else { exit(130) } }
        sigint.resume()
        LineChat(controller: controller, read: { Swift.readLine() },
                 write: { FileHandle.standardOutput.write(Data($0.utf8)) }).run()
        exit(0)
    } catch {
        fail(error.description)
    }
}
