import Foundation

extension TokenGenerator {
    /// The events as an AsyncStream, produced on a thread of their own (a forward blocks its
    /// thread). Ending the consumer's task, or dropping the stream, cancels: the generator stops
    /// before its next forward, yields `.finished` with reason `.cancelled`, and the stream ends.
    /// A failure ends the stream after `onError` sees it.
    public func stream(onError: @escaping @Sendable (GenerationError) -> Void = { _ in }) -> AsyncStream<GenerationEvent> {
        AsyncStream { continuation in
            continuation.onTermination = { [cancellation] _ in cancellation.cancel() }
            let thread = Thread { [self] in
                do throws(GenerationError) {
                    while let e = try next() { continuation.yield(e) }
                } catch {
                    onError(error)
                }
                continuation.finish()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }
}
